/**
 * Real SIP peers for the interop tests, run as child processes on 127.0.0.1: Kamailio from
 * Debian as the proxy, SIPp as caller and callee. Every process is started as the leader of
 * its own process group, remembered by a PeerGroup, and stopped by its id: SIGTERM, then SIGKILL
 * to the group it leads, which also reaches a Kamailio worker that outlives its main process
 * (seen when the main process is terminated during start-up), and SIGKILL at the latest when the
 * test process exits. Each keeps the tail of its output for failure messages.
 */
import { ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { delay, waitFor } from './wait';

export const kamailioBinary = '/usr/sbin/kamailio';
export const sippBinary = '/usr/bin/sipp';

/** Output kept per process, from the end. */
const outputTailBytes = 64 * 1024;

/** Whether `binary` exists and is executable. */
export function installed(binary: string): boolean {
  try {
    fs.accessSync(binary, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One child process: its id, the tail of its stdout and stderr, and its exit. */
export class PeerProcess {
  readonly pid: number;
  readonly exited: Promise<Exit>;
  private tail = '';
  private exit: Exit | null = null;

  constructor(
    readonly name: string,
    child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
    const keep = (chunk: Buffer): void => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-outputTailBytes);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** The last `bytes` of what the process wrote, prefixed with its name, for a failure message. */
  output(bytes = 8192): string {
    return `--- ${this.name} (pid ${this.pid}) output, last ${bytes} bytes ---\n${this.tail.slice(-bytes)}`;
  }

  /** Resolves with the exit, or rejects after `timeoutMs` (the process keeps running). */
  async exitWithin(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms\n${this.output()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM; once it exits or after `graceMs`, SIGKILL to the process group it leads. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    signal(this.pid, 'SIGTERM');
    await this.exitWithin(graceMs).catch(() => undefined);
    // The leader if it ignored SIGTERM, and any worker that outlives it.
    signal(-this.pid, 'SIGKILL');
    await this.exited;
  }

  /** Synchronous last resort (process 'exit' handler). */
  kill(): void {
    if (this.running) signal(-this.pid, 'SIGKILL');
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The processes a test file started; `stopAll()` in its `after.always` hook. */
export class PeerGroup {
  private readonly processes: PeerProcess[] = [];
  private readonly onExit = (): void => this.processes.forEach((p) => p.kill());

  constructor() {
    process.on('exit', this.onExit);
  }

  /** Starts `binary` in its own process group, in `cwd`, stdin closed, output kept. */
  spawn(name: string, binary: string, args: string[], cwd: string): PeerProcess {
    const child = spawn(binary, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const peer = new PeerProcess(name, child);
    this.processes.push(peer);
    return peer;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
    process.off('exit', this.onExit);
  }
}

function canBind(port: number): Promise<boolean> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * A port of `min..max` (stepping by `step` from a random start) such that every `port + offset`
 * can be bound on 127.0.0.1 right now. The fixed test ranges lie inside Linux's ephemeral range,
 * where other tests' sockets land at random, so the peers take ports that are free, not fixed ones.
 */
export async function freeUdpPort(min: number, max: number, step = 1, offsets: readonly number[] = [0]): Promise<number> {
  const candidates = Math.floor((max - min) / step) + 1;
  const first = Math.floor(Math.random() * candidates);
  for (let i = 0; i < candidates; i++) {
    const port = min + ((first + i) % candidates) * step;
    const free = await Promise.all(offsets.map((offset) => canBind(port + offset)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no free UDP port in ${min}..${max} on 127.0.0.1`);
}

/** The inode of the socket bound to UDP 127.0.0.1:`port`, from /proc/net/udp, or null. */
function udpSocketInode(port: number): string | null {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === wanted) return fields[9];
  }
  return null;
}

/** Whether process `pid` holds the socket with `inode`. */
function holdsSocket(pid: number, inode: string): boolean {
  const dir = `/proc/${pid}/fd`;
  try {
    return fs.readdirSync(dir).some((fd) => {
      try {
        return fs.readlinkSync(`${dir}/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Waits until `peer` itself has bound UDP 127.0.0.1:`port`; fails early, with its output, if it exits first. */
export async function waitForUdpPort(peer: PeerProcess, port: number, timeoutMs = 5000): Promise<void> {
  await waitFor(
    () => {
      if (!peer.running) throw new Error(`${peer.name} exited before binding port ${port}\n${peer.output()}`);
      const inode = udpSocketInode(port);
      return inode !== null && holdsSocket(peer.pid, inode);
    },
    `${peer.name} to bind UDP port ${port}`,
    timeoutMs,
  );
}

/**
 * Sends SIP OPTIONS to a proxy on 127.0.0.1:`port` until it answers 200 (the routing script is
 * loaded and its workers run), or fails with the proxy's output.
 */
export async function waitForSipProxy(proxy: PeerProcess, port: number, timeoutMs = 5000): Promise<void> {
  const socket = dgram.createSocket('udp4');
  let answered = false;
  socket.on('message', (msg) => {
    if (/^SIP\/2\.0 200 /.test(msg.toString('latin1'))) answered = true;
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const localPort = socket.address().port;
  let attempt = 0;
  try {
    const deadline = Date.now() + timeoutMs;
    while (!answered) {
      if (!proxy.running) throw new Error(`${proxy.name} exited during start-up\n${proxy.output()}`);
      if (Date.now() > deadline) throw new Error(`${proxy.name} did not answer OPTIONS within ${timeoutMs} ms\n${proxy.output()}`);
      socket.send(optionsRequest(port, localPort, ++attempt), port, '127.0.0.1');
      await delay(100);
    }
  } finally {
    socket.close();
  }
}

function optionsRequest(port: number, localPort: number, attempt: number): string {
  return [
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK-probe-${process.pid}-${attempt}`,
    'Max-Forwards: 70',
    `From: <sip:probe@127.0.0.1:${localPort}>;tag=probe${process.pid}`,
    `To: <sip:127.0.0.1:${port}>`,
    `Call-ID: probe-${process.pid}-${attempt}@127.0.0.1`,
    `CSeq: ${attempt} OPTIONS`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** Lines `<word> <call-id> c=IN IP4 <address> m=audio <port>` written by the scenarios' <log> actions. */
export interface LoggedSdp {
  callId: string;
  address: string;
  port: number;
}

/** The SDP lines that a SIPp scenario logged with tag `word` (`offer` at the UAS, `answer` at the UAC). */
export function loggedSdp(logFile: string, word: 'offer' | 'answer'): LoggedSdp[] {
  if (!fs.existsSync(logFile)) return [];
  const pattern = new RegExp(`^${word} (\\S+) c=IN IP4 (\\S+) m=audio (\\d+)$`);
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const m = pattern.exec(line.trim());
      return m ? [{ callId: m[1], address: m[2], port: Number(m[3]) }] : [];
    });
}
