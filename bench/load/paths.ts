/**
 * Where things are, whether the benchmark runs compiled (dist/bench/load/*.js, via
 * `npm run bench`) or from source (`npx tsx bench/load/packet-rate.ts`).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** True when running the TypeScript sources through tsx rather than compiled output. */
export function runningFromSource(): boolean {
  return __filename.endsWith('.ts');
}

/** Command and arguments that run a sibling module of this directory with Node. */
export function nodeCommandFor(relativeModule: string): { command: string; args: string[] } {
  if (runningFromSource()) {
    return { command: process.execPath, args: ['--import', 'tsx', join(__dirname, `${relativeModule}.ts`)] };
  }
  return { command: process.execPath, args: [join(__dirname, `${relativeModule}.js`)] };
}
