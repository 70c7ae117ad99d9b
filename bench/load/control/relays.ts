/**
 * The relays under test, each started in a fresh process pinned to the relay CPU through
 * the packet-rate benchmark's GuardedChild (taskset, exec-guard, kill by PID):
 *
 * - rtphub: the real command, `node bin/rtphub.js` (compiled dist/), with one data-plane
 *   worker unless the live calls need more registered-descriptor slots than one io_uring
 *   worker has (see `rtphubWorkers`); every worker shares the one pinned core either way.
 * - rtpengine: Debian's daemon, with the packet-rate benchmark's command line plus
 *   `--delete-delay=0`.
 *
 * - ng-echo: a C stub that answers every request `result: ok` at once, doing nothing: the
 *   load generator's ceiling on this machine (control/ng-echo.c).
 *
 * All answer ng on a free loopback UDP port; a relay is ready when it answers `ping`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { NgClient } from '../../../src/ng/client';
import { GuardedChild } from '../child';
import { freeUdpPort, waitForPong } from '../ng-client';
import { repoRoot } from '../paths';
import type { LaunchSettings } from '../relays/relay';
import { rtpengineArgs } from '../relays/rtpengine';

const RTPENGINE = '/usr/bin/rtpengine';
const STARTUP_TIMEOUT_MS = 15_000;
/** rtphub stops by closing every call; with 10,000 live calls that takes a moment. */
const STOP_GRACE_MS = 20_000;
/** Sockets per call on both relays: RTP and RTCP on each of the two legs. */
export const SOCKETS_PER_CALL = 4;
/** Log lines read back after a trial, and warnings kept of them. */
const MAX_LOG_LINES = 10_000;
const MAX_WARNINGS = 5;
/** Lowest media port ever used (below it: well-known and registered services). */
const PORT_FLOOR = 10000;
/** rtpengine's `WARNING`/`ERR` lines, pino's levels 40 (warn) to 60 (fatal). */
const WARNING = /warn|err|"level":[456]0/i;

export type RelayFamily = 'rtphub' | 'rtpengine' | 'ng-echo';

export interface RelayStart {
  /** Calls the relay will hold at most (live + in flight), to size rtphub's workers. */
  maxCalls: number;
  /** Media port range for this trial (see `portRange`). */
  portMin: number;
  portMax: number;
  /** Write a V8 CPU profile of the relay into this directory (rtphub only). */
  profileDir?: string;
}

export interface RunningControlRelay {
  readonly pid: number;
  readonly ngPort: number;
  /** Data-plane worker threads (rtphub `--num-threads`, rtpengine `--num-threads`). */
  readonly workers: number;
  /** The command line, for the report. */
  readonly commandLine: string;
  /** The last warnings the relay printed (log lines at warn level or above, either stream). */
  warnings(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface ControlRelay {
  readonly family: RelayFamily;
  unavailableReason(): string | null;
  start(options: RelayStart): Promise<RunningControlRelay>;
}

/**
 * Each io_uring worker registers its sockets in a fixed table sized by the soft open-file
 * limit (at most 65,536): past `limit / 4` calls one worker refuses new streams. rtphub
 * gets the fewest workers that hold `maxCalls`.
 */
export function rtphubWorkers(maxCalls: number, openFileLimit: number): number {
  const slots = Math.min(openFileLimit, 65_536);
  return Math.max(1, Math.ceil((maxCalls * SOCKETS_PER_CALL) / slots));
}

/**
 * The media ports of a trial: enough for `maxCalls` with 10 % spare (both relays skip ports
 * something else holds), at the top of the port space so that smaller trials stay clear of
 * the packet-rate benchmark's 12000-31999 when both run on one machine.
 */
export function portRange(maxCalls: number): { portMin: number; portMax: number } {
  const portMax = 65535;
  const wanted = Math.ceil(maxCalls * SOCKETS_PER_CALL * 1.1) + 1000;
  return { portMin: Math.max(PORT_FLOOR, portMax + 1 - wanted), portMax };
}

/** The soft open-file limit children inherit. */
export function openFileLimit(): number {
  const text = execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim();
  return text === 'unlimited' ? 1 << 20 : Number(text);
}

class ChildRelay implements RunningControlRelay {
  constructor(
    private readonly child: GuardedChild,
    readonly ngPort: number,
    readonly workers: number,
    readonly commandLine: string,
    private readonly graceMs: number,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  async warnings(): Promise<string[]> {
    const lines = this.child.stderr().split('\n');
    for (let i = 0; i < MAX_LOG_LINES; i++) {
      try {
        lines.push(await this.child.readLine(1, 'log line'));
      } catch {
        break; // no more buffered lines, or the relay is gone
      }
    }
    return lines.filter((line) => WARNING.test(line)).slice(-MAX_WARNINGS);
  }

  stop(): Promise<void> {
    return this.child.stop(null, this.graceMs);
  }
}

export class RtphubControlRelay implements ControlRelay {
  readonly family = 'rtphub';

  constructor(private readonly launch: LaunchSettings) {}

  unavailableReason(): string | null {
    const root = repoRoot();
    for (const file of [join('build', 'Release', 'rtphub.node'), join('dist', 'src', 'cli', 'main.js')]) {
      if (!existsSync(join(root, file))) return `${file} missing (npm run build)`;
    }
    return null;
  }

  async start(options: RelayStart): Promise<RunningControlRelay> {
    const ngPort = await freeUdpPort();
    const workers = rtphubWorkers(options.maxCalls, openFileLimit());
    const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
    const args = [
      ...profile,
      join(repoRoot(), 'bin', 'rtphub.js'),
      `--listen-ng=127.0.0.1:${ngPort}`,
      '--interface=127.0.0.1',
      `--port-min=${options.portMin}`,
      `--port-max=${options.portMax}`,
      `--num-threads=${workers}`,
      '--backend=io_uring',
      '--delete-delay=0',
      '--log-level=4',
    ];
    const child = this.spawn(process.execPath, args);
    await ready(child, ngPort);
    return new ChildRelay(child, ngPort, workers, `node ${args.map((a) => relative(repoRoot(), a) || a).join(' ')}`, STOP_GRACE_MS);
  }

  private spawn(command: string, args: string[]): GuardedChild {
    return GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: this.launch.maxSeconds,
      guard: this.launch.guard,
      command,
      args,
      label: 'rtphub',
    });
  }
}

export class RtpengineControlRelay implements ControlRelay {
  readonly family = 'rtpengine';

  constructor(private readonly launch: LaunchSettings) {}

  unavailableReason(): string | null {
    return existsSync(RTPENGINE) ? null : `${RTPENGINE} not installed (apt-get install rtpengine-daemon)`;
  }

  async start(options: RelayStart): Promise<RunningControlRelay> {
    const ngPort = await freeUdpPort();
    const launch = { ...this.launch, portMin: options.portMin, portMax: options.portMax };
    const args = [...rtpengineArgs(ngPort, launch), '--delete-delay=0'];
    const child = GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: launch.maxSeconds,
      guard: launch.guard,
      command: RTPENGINE,
      args,
      label: 'rtpengine',
    });
    await ready(child, ngPort);
    return new ChildRelay(child, ngPort, 1, `rtpengine ${args.join(' ')}`, 5000);
  }
}

export class EchoControlRelay implements ControlRelay {
  readonly family = 'ng-echo';
  private binary: string | null = null;

  constructor(private readonly launch: LaunchSettings) {}

  unavailableReason(): string | null {
    try {
      this.binary = buildEcho();
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  }

  async start(): Promise<RunningControlRelay> {
    const ngPort = await freeUdpPort();
    const binary = this.binary ?? buildEcho();
    const child = GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: this.launch.maxSeconds,
      guard: this.launch.guard,
      command: binary,
      args: [String(ngPort)],
      label: 'ng-echo',
    });
    await ready(child, ngPort);
    return new ChildRelay(child, ngPort, 1, `${relative(repoRoot(), binary)} ${ngPort}`, 1000);
  }
}

/** Compiles control/ng-echo.c into build/bench/ (small; rebuilt every run like the packet-rate tools). */
function buildEcho(): string {
  const outDir = join(repoRoot(), 'build', 'bench');
  mkdirSync(outDir, { recursive: true });
  const output = join(outDir, 'ng-echo');
  const source = join(repoRoot(), 'bench', 'load', 'control', 'ng-echo.c');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', output, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
    throw new Error(`cc failed for ${source}:\n${stderr}`);
  }
  return output;
}

/** Waits until the relay answers ping; stops it if it never does. */
async function ready(child: GuardedChild, port: number): Promise<void> {
  const ng = new NgClient({ host: '127.0.0.1', port, timeoutMs: 200, attempts: 1 });
  try {
    await waitForPong(ng, child, STARTUP_TIMEOUT_MS);
  } catch (error) {
    await child.stop(null);
    throw error;
  } finally {
    ng.close();
  }
}


/** TypeScript sources newer than their compiled output: the relay would run stale code. */
export function staleCompiledSources(): string[] {
  const root = repoRoot();
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) {
        const compiled = join(root, 'dist', path.replace(/\.ts$/, '.js'));
        if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(join(root, path)).mtimeMs) stale.push(path);
      }
    }
  };
  walk('src');
  return stale;
}
