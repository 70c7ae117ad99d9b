/**
 * Child processes of the packet-rate benchmark. Every child (generator, relay under test)
 * runs as `taskset -c CPU [nice -n N] exec-guard MAX_SECONDS command…`: each of these
 * execs the next, so the child's PID is the command's own (the harness reads /proc/PID and kills
 * by PID), and exec-guard makes the kernel kill it when the harness dies or its maximum
 * lifetime passes. Children are talked to by lines on stdin/stdout; every wait for a
 * line or an exit is bounded by a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface GuardedChildOptions {
  /** CPU the child is pinned to with taskset. */
  cpu: number;
  /** Nice value the child runs at (0: unchanged); negative values shield it from unrelated load. */
  nice: number;
  /** Hard limit on the child's lifetime, enforced by exec-guard's alarm. */
  maxSeconds: number;
  /** Path of the exec-guard binary. */
  guard: string;
  command: string;
  args: string[];
  /** Printed in errors: which child this is. */
  label: string;
}

const STDERR_TAIL_CHARS = 2000;
const live = new Set<GuardedChild>();

export class GuardedChild {
  readonly label: string;
  private readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private stderrTail = '';
  private exitCode: number | null | undefined = undefined;
  private readonly exited: Promise<void>;

  private constructor(options: GuardedChildOptions) {
    this.label = options.label;
    const nice = options.nice === 0 ? [] : ['nice', '-n', String(options.nice)];
    const guarded = [options.guard, String(options.maxSeconds), options.command, ...options.args];
    const args = ['-c', String(options.cpu), ...nice, ...guarded];
    this.proc = spawn('taskset', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        live.delete(this);
        this.wake();
        resolve();
      });
    });
    this.proc.once('error', (err) => {
      this.stderrTail += `\nspawn failed: ${err.message}`;
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.wake();
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    });
    this.proc.stdin!.on('error', () => undefined); // a dead child must not crash the harness
    live.add(this);
  }

  static spawn(options: GuardedChildOptions): GuardedChild {
    return new GuardedChild(options);
  }

  get pid(): number {
    if (this.proc.pid === undefined) throw new Error(`${this.label}: not started`);
    return this.proc.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The next stdout line; rejects on timeout or when the child exits first. */
  async readLine(timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (!this.running) throw this.failure(`exited (code ${this.exitCode}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw this.failure(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.waitForWake(left);
    }
    return this.lines.shift()!;
  }

  /** Reads lines until one parses as a JSON object; other lines are skipped. */
  async readJson(timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const line = await this.readLine(Math.max(1, deadline - Date.now()), what);
      const value = parseJsonObject(line);
      if (value) return value;
    }
  }

  write(text: string): void {
    if (this.running) this.proc.stdin!.write(text);
  }

  /** Asks politely (the given stdin line and/or SIGTERM), then SIGKILL; always by PID. */
  async stop(quitLine: string | null, graceMs = 3000): Promise<void> {
    if (!this.running) return;
    if (quitLine !== null) this.write(quitLine);
    else this.signal('SIGTERM');
    if (await this.waitExit(graceMs)) return;
    this.signal('SIGTERM');
    if (await this.waitExit(graceMs)) return;
    this.signal('SIGKILL');
    await this.waitExit(graceMs);
  }

  stderr(): string {
    return this.stderrTail.trim();
  }

  failure(message: string): Error {
    const tail = this.stderr();
    return new Error(`${this.label}: ${message}${tail ? `\n  stderr: ${tail.split('\n').slice(-5).join('\n  ')}` : ''}`);
  }

  private signal(signal: NodeJS.Signals): void {
    if (!this.running || this.proc.pid === undefined) return;
    try {
      process.kill(this.proc.pid, signal);
    } catch {
      // already gone
    }
  }

  private async waitExit(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    return !this.running;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  private waitForWake(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** SIGKILLs every child still running (harness exit path), by PID. */
  static killAll(): void {
    for (const child of live) child.signal('SIGKILL');
  }
}

export function parseJsonObject(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Reads the [[x,y],…] port-pair list a child printed as {"ports":…}. */
export function portPairs(message: Record<string, unknown>, expected: number, label: string): Array<[number, number]> {
  const ports = message.ports;
  const valid =
    Array.isArray(ports) &&
    ports.length === expected &&
    ports.every((p) => Array.isArray(p) && p.length === 2 && p.every((n) => Number.isInteger(n) && n > 0 && n < 65536));
  if (!valid) throw new Error(`${label}: expected ${expected} port pairs, got ${JSON.stringify(message).slice(0, 200)}`);
  return ports as Array<[number, number]>;
}
