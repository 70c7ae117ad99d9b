/**
 * Builds the benchmark's native helpers (generator, naive relay, exec-guard) from
 * bench/load/native/*.c into build/bench/ with `cc -O2`, at every run: they are small.
 * node-gyp's `rebuild` wipes build/, possibly in the middle of a run, so every trial
 * checks the binaries first and rebuilds any that vanished.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths';

const SOURCES = { generator: 'rtp-load', naiveRelay: 'naive-relay', guard: 'exec-guard' } as const;

export class NativeTools {
  readonly generator: string;
  readonly naiveRelay: string;
  readonly guard: string;
  private readonly outDir = join(repoRoot(), 'build', 'bench');

  private constructor() {
    this.generator = join(this.outDir, SOURCES.generator);
    this.naiveRelay = join(this.outDir, SOURCES.naiveRelay);
    this.guard = join(this.outDir, SOURCES.guard);
  }

  /** Compiles all helpers; throws with the compiler's message on failure. */
  static build(): NativeTools {
    const tools = new NativeTools();
    for (const name of Object.values(SOURCES)) tools.compile(name);
    return tools;
  }

  /** Recompiles any helper that is gone since the last build. */
  ensureBuilt(): void {
    for (const name of Object.values(SOURCES)) {
      if (!existsSync(join(this.outDir, name))) this.compile(name);
    }
  }

  private compile(name: string): void {
    mkdirSync(this.outDir, { recursive: true });
    const source = join(repoRoot(), 'bench', 'load', 'native', `${name}.c`);
    try {
      execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', join(this.outDir, name), source], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
      throw new Error(`cc failed for ${source}:\n${stderr}`);
    }
  }
}

/** Compiles the helpers into build/bench/ (shared with the other load benchmarks). */
export function buildNativeTools(): NativeTools {
  return NativeTools.build();
}
