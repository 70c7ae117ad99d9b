/**
 * The failover lab's executables: the C endpoint program (rtp-peers.c, beside this file) and
 * exec-guard (bench/load/native/exec-guard.c), compiled with `cc -O2` into a private temporary
 * directory per run (node-gyp's rebuild may wipe build/ in the middle of a run); and how to start
 * a TypeScript module or the rtphub CLI with Node whether this runs from source (tsx) or compiled.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { repoRoot, runningFromSource } from '../paths';

export interface Tools {
  peers: string;
  guard: string;
  dir: string;
  remove(): void;
}

function compile(source: string, output: string): void {
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', output, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new Error(`cc failed for ${source}:\n${stderr}`);
  }
}

export function buildTools(): Tools {
  const dir = mkdtempSync(join(os.tmpdir(), `rh-failover-${process.pid}-`));
  const root = repoRoot();
  const peers = join(dir, 'rtp-peers');
  const guard = join(dir, 'exec-guard');
  compile(join(root, 'bench', 'load', 'failover', 'rtp-peers.c'), peers);
  compile(join(root, 'bench', 'load', 'native', 'exec-guard.c'), guard);
  return { peers, guard, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Command line running a module of this directory (`ng-driver`) with Node. */
export function moduleCommand(name: string): string[] {
  if (runningFromSource()) return [process.execPath, '--import', 'tsx', join(__dirname, `${name}.ts`)];
  return [process.execPath, join(__dirname, `${name}.js`)];
}

/**
 * Command line running the rtphub CLI: `node bin/rtphub.js` (the compiled CLI) when this runs
 * compiled, the TypeScript sources through tsx when it runs from source (tests).
 */
export function rtphubCommand(): string[] {
  const root = repoRoot();
  if (runningFromSource()) {
    return [process.execPath, '--import', 'tsx', '-e', `require(${JSON.stringify(join(root, 'src', 'cli', 'main.ts'))}).main(process.argv.slice(1))`, '--'];
  }
  // e.g. RTPHUB_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the relays
  const nodeArgs = (process.env.RTPHUB_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  return [process.execPath, ...nodeArgs, join(root, 'bin', 'rtphub.js')];
}
