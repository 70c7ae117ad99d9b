/**
 * A real rtpengine (Debian's /usr/bin/rtpengine) for the interop tests: started in the foreground
 * on 127.0.0.1 with its own ng port and media port range, no kernel forwarding and one thread,
 * ready once it answers an ng ping, stopped by its process id. Its log (stderr) is kept, bounded,
 * for the test's failure message.
 */
import { ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';

export const RTPENGINE_PATH = '/usr/bin/rtpengine';

/** Whether rtpengine is installed; the interop tests skip (and say so) only when it is not. */
export function rtpengineInstalled(): boolean {
  return fs.existsSync(RTPENGINE_PATH);
}

export interface RtpengineOptions {
  /** ng control port on 127.0.0.1 (must be free). */
  ngPort: number;
  portMin: number;
  portMax: number;
  /** More rtpengine flags, e.g. `--delete-delay=1`. */
  extraArgs?: string[];
}

const LOG_LIMIT = 64 * 1024;

/** Whether a UDP port on 127.0.0.1 can be bound right now. */
export function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** The first UDP port of `min..max` free on 127.0.0.1 right now; throws if there is none. */
export async function firstFreeUdpPort(min: number, max: number): Promise<number> {
  for (let port = min; port <= max; port++) if (await udpPortFree(port)) return port;
  throw new Error(`no free UDP port in ${min}..${max}`);
}

/** Sends one ng ping; resolves true on `pong`, false on silence within `timeoutMs`. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => undefined);
    socket.on('message', (msg) => done(msg.toString('latin1').startsWith('ready d6:result4:ponge')));
    socket.send(Buffer.from('ready d7:command4:pinge'), port, '127.0.0.1');
  });
}

export class Rtpengine {
  private log = '';
  private exited?: Promise<void>;

  private constructor(
    readonly options: RtpengineOptions,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log = (this.log + chunk.toString('utf8')).slice(-LOG_LIMIT);
    });
    child.stdout?.resume();
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get ngPort(): number {
    return this.options.ngPort;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last part of rtpengine's log, for failure messages. */
  get output(): string {
    return this.log;
  }

  /** Starts rtpengine and waits until it answers ng pings (rejects with its log if it does not). */
  static async start(options: RtpengineOptions): Promise<Rtpengine> {
    if (!(await udpPortFree(options.ngPort))) throw new Error(`ng port ${options.ngPort} is in use`);
    const args = [
      '--config-file=none',
      '--foreground',
      '--table=-1',
      '--interface=127.0.0.1',
      `--listen-ng=127.0.0.1:${options.ngPort}`,
      `--port-min=${options.portMin}`,
      `--port-max=${options.portMax}`,
      '--num-threads=1',
      '--log-stderr',
      ...(options.extraArgs ?? []),
    ];
    const child = spawn(RTPENGINE_PATH, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const engine = new Rtpengine(options, child);
    let exitCode: number | null | undefined;
    child.once('exit', (code) => (exitCode = code));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && exitCode === undefined) {
      if (await ping(options.ngPort, 200)) return engine;
    }
    await engine.stop();
    throw new Error(`rtpengine did not start (exit code ${String(exitCode)}):\n${engine.output}`);
  }

  /** Stops rtpengine: SIGTERM, then SIGKILL if it has not exited within 3 s. Idempotent. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killed = await Promise.race([this.exited?.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    if (killed) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
