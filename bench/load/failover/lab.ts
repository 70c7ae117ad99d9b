/**
 * A failover lab: an active/standby pair of real rtphub processes and real RTP endpoints, each in
 * its own network namespace on one bridge (test/helpers/netns.ts), driven as a SIP server drives
 * rtpengine. Hosts: caller 198.18.0.10, callee 198.18.0.20, relay a 198.18.0.1, relay b
 * 198.18.0.2; the shared address 198.18.0.100 is held by the active relay, media sockets are
 * bound to it on both (IP_FREEBIND). Calls are set up over ng (to the shared address) by
 * ng-driver.ts in the caller's namespace; every call carries 20 ms G.711 RTP both ways between
 * rtp-peers processes in the caller's and the callee's namespaces, which time each packet's
 * arrival, so a failover's media gap is measured per call at the receiving endpoints.
 *
 * Used by test/failover/*.test.ts and bench/load/failover.ts. Every wait is bounded; `destroy()`
 * kills every process the lab started (by PID) and deletes its namespaces.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import readline from 'node:readline';
import { Netns } from '../../../test/helpers/netns';
import { buildTools, moduleCommand, rtphubCommand, type Tools } from './tools';

export type RelayName = 'a' | 'b';
export type Role = 'active' | 'standby' | 'auto';

export const VIP = '198.18.0.100';
const HOSTS = [
  { name: 'caller', address: '198.18.0.10/24' },
  { name: 'callee', address: '198.18.0.20/24' },
  { name: 'a', address: '198.18.0.1/24' },
  { name: 'b', address: '198.18.0.2/24' },
];
export const NG_PORT = 2222;
export const HA_PORT = 2223;

export type Json = { [key: string]: unknown };

/** Line-oriented JSON over a child's stdin/stdout, answers taken in order. */
class LineChannel {
  private readonly waiting: Array<{ resolve(line: Json): void; reject(error: Error): void }> = [];
  private readonly lines: Json[] = [];
  private closedWith: Error | null = null;

  constructor(
    readonly child: ChildProcess,
    private readonly what: string,
  ) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let value: Json;
      try {
        value = JSON.parse(line) as Json;
      } catch {
        return;
      }
      const w = this.waiting.shift();
      if (w) w.resolve(value);
      else this.lines.push(value);
    });
    child.on('exit', (code, signal) => {
      this.closedWith = new Error(`${what} exited (${code ?? signal})`);
      for (const w of this.waiting.splice(0)) w.reject(this.closedWith);
    });
    child.stdin!.on('error', () => undefined);
  }

  write(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  next(timeoutMs: number): Promise<Json> {
    const ready = this.lines.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const entry = {
        resolve: (v: Json) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`${this.what}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.push(entry);
    });
  }

  async request(line: string, timeoutMs: number): Promise<Json> {
    this.write(line);
    return this.next(timeoutMs);
  }
}

/** The ng driver: answers matched by tag, so requests may overlap. */
class Driver {
  private readonly pending = new Map<number, (reply: Json) => void>();
  private tag = 0;

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let value: Json;
      try {
        value = JSON.parse(line) as Json;
      } catch {
        return;
      }
      const resolve = this.pending.get(value.tag as number);
      this.pending.delete(value.tag as number);
      resolve?.(value);
    });
    child.stdin!.on('error', () => undefined);
  }

  request(command: Json, timeoutMs = 30_000): Promise<Json> {
    const tag = ++this.tag;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(tag);
        reject(new Error(`ng driver: no answer to ${String(command.op)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(tag, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.child.stdin!.write(`${JSON.stringify({ ...command, tag })}\n`);
    });
  }
}

/** One rtp-peers process: a range of the calls, one side, one packet period. */
class PeerGroup {
  ports: number[] = [];
  constructor(
    readonly channel: LineChannel,
    readonly first: number,
    readonly count: number,
    readonly periodUs: number,
  ) {}
}

export interface PeerReport {
  sent: number;
  sendErrors: number;
  behind: number;
  rx: number[];
  gapUs: number[];
  silentUs: number[];
}

export interface CallMeasure {
  /** Per call: its packet period (ms). */
  periodMs: number[];
  /** Per call: the longest silence in either direction since the mark (ms). */
  gapMs: number[];
  /** Per call: the current silence in either direction (ms). */
  silentMs: number[];
  /** Per call: packets received since the mark, the smaller of the two directions. */
  rx: number[];
  sent: number;
  sendErrors: number;
  behind: number;
}

export interface RelayProcess {
  name: RelayName;
  child: ChildProcess;
  pid: number;
  logFile: string;
}

export interface LabOptions {
  /** Calls the endpoints carry (their sockets are bound at creation). */
  calls: number;
  /**
   * The first `denseCalls` calls send every 20 ms (G.711 framing), the others every
   * `sparsePeriodUs`: a 2-core machine cannot carry 50 packets/s each way for thousands of calls
   * through veth pairs and a bridge. Default: every call dense.
   */
  denseCalls?: number;
  sparsePeriodUs?: number;
  keepaliveMs?: number;
  missed?: number;
  priorities?: Partial<Record<RelayName, number>>;
  roles?: Partial<Record<RelayName, Role>>;
  /** Extra rtphub flags for both relays. */
  flags?: string[];
  /** Sockets per rtp-peers process (the open-file limit is per process). */
  socketsPerProcess?: number;
  /** Where relay logs go (and stay); by default the lab's temporary directory, removed with it. */
  logDir?: string;
  /** Scheduling priority of every process the lab starts (0: unchanged). */
  nice?: number;
  log?: (message: string) => void;
}

export class FailoverLab {
  readonly relays: Partial<Record<RelayName, RelayProcess>> = {};
  readonly callers: PeerGroup[] = [];
  readonly callees: PeerGroup[] = [];
  /** Call ids set up so far, by endpoint index. */
  readonly callIds: string[] = [];
  /** The relay's ports facing the caller and the callee, by endpoint index. */
  private readonly relayPorts: Array<[number, number]> = [];
  private readonly drivers: Partial<Record<'caller' | RelayName, Driver>> = {};
  private readonly logs: WriteStream[] = [];
  private runs = 0;

  private constructor(
    readonly net: Netns,
    readonly tools: Tools,
    readonly options: LabOptions,
  ) {}

  static async create(options: LabOptions): Promise<FailoverLab> {
    const tools = buildTools();
    let net: Netns;
    try {
      net = await Netns.create(HOSTS, { guard: tools.guard, nice: options.nice ?? 0 });
    } catch (error) {
      tools.remove();
      throw error;
    }
    const lab = new FailoverLab(net, tools, options);
    try {
      // Client sockets of the relays' hosts (replication, ng clients) must not take media ports:
      // a standby could not bind a call's port then (deployments keep them apart the same way).
      for (const relay of ['a', 'b']) await net.exec(relay, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=61000 65000']);
      await lab.startEndpoints();
      lab.drivers.caller = lab.startDriver('caller');
      lab.drivers.a = lab.startDriver('a');
      lab.drivers.b = lab.startDriver('b');
      await lab.startRelay('a', options.roles?.a ?? 'active');
      await lab.startRelay('b', options.roles?.b ?? 'standby');
      await lab.waitFor(async () => (await lab.ha('b')).replication?.connected === 1, 'relay b replicating to a', 20_000);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  private log(message: string): void {
    this.options.log?.(message);
  }

  get logDir(): string {
    return this.options.logDir ?? this.tools.dir;
  }

  private startDriver(host: 'caller' | RelayName): Driver {
    const [command, ...args] = moduleCommand('ng-driver');
    const child = this.net.spawn(host, command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    return new Driver(child);
  }

  private async startEndpoints(): Promise<void> {
    const per = this.options.socketsPerProcess ?? 4000;
    const dense = Math.min(this.options.calls, this.options.denseCalls ?? this.options.calls);
    const ranges: Array<[number, number, number]> = [];
    for (let first = 0; first < dense; first += per) ranges.push([first, Math.min(per, dense - first), 20_000]);
    const sparse = this.options.sparsePeriodUs ?? 20_000;
    for (let first = dense; first < this.options.calls; first += per) ranges.push([first, Math.min(per, this.options.calls - first), sparse]);
    for (const [first, count, periodUs] of ranges) {
      for (const [host, groups] of [
        ['caller', this.callers],
        ['callee', this.callees],
      ] as const) {
        const args = ['--bind', this.net.address(host), '--count', String(count), '--period-us', String(periodUs)];
        const child = this.net.spawn(host, this.tools.peers, args, { stdio: ['pipe', 'pipe', 'inherit'] });
        const group = new PeerGroup(new LineChannel(child, `rtp-peers in ${host}`), first, count, periodUs);
        group.ports = ((await group.channel.next(20_000)).ports as number[]) ?? [];
        if (group.ports.length !== count) throw new Error(`rtp-peers in ${host} bound ${group.ports.length} of ${count} sockets`);
        groups.push(group);
      }
    }
  }

  relayFlags(name: RelayName, role: Role): string[] {
    const peer = name === 'a' ? 'b' : 'a';
    return [
      `--interface=${VIP}`,
      `--listen-ng=0.0.0.0:${NG_PORT}`,
      '--port-min=20000',
      '--port-max=60999',
      '--timeout=3600',
      `--ha-peer=${this.net.address(peer)}:${HA_PORT}`,
      `--ha-listen=0.0.0.0:${HA_PORT}`,
      `--ha-node-id=${name}`,
      `--ha-priority=${this.options.priorities?.[name] ?? 100}`,
      `--ha-keepalive-interval=${this.options.keepaliveMs ?? 20}`,
      `--ha-missed=${this.options.missed ?? 3}`,
      `--ha-vip=${VIP}/24`,
      '--ha-vip-dev=eth0',
      `--ha-role=${role}`,
      ...(this.options.flags ?? []),
    ];
  }

  /** Starts a relay process in its namespace and waits until it answers ng. */
  async startRelay(name: RelayName, role: Role): Promise<RelayProcess> {
    const [command, ...args] = rtphubCommand();
    const logFile = join(this.logDir, `relay-${name}-${++this.runs}.log`);
    const log = createWriteStream(logFile);
    this.logs.push(log);
    const child = this.net.spawn(name, command, [...args, ...this.relayFlags(name, role)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const relay: RelayProcess = { name, child, pid: child.pid!, logFile };
    this.relays[name] = relay;
    await this.waitFor(async () => (await this.ng(name, { command: 'ping' }, 300)).result === 'pong', `relay ${name} answering ng`, 20_000);
    this.log(`relay ${name} started (pid ${relay.pid}, ${role})`);
    return relay;
  }

  /** SIGKILLs a relay (by PID). */
  async killRelay(name: RelayName): Promise<void> {
    const relay = this.relays[name];
    if (!relay) return;
    await this.net.kill(relay.child);
    delete this.relays[name];
  }

  /** The last lines of a relay's log (role changes and warnings only: `events`), for failure messages. */
  relayLog(name: RelayName, lines = 30, events = false): string {
    const relay = this.relays[name];
    if (!relay) return '';
    try {
      let all = readFileSync(relay.logFile, 'utf8').trim().split('\n');
      if (events) all = all.filter((l) => l.includes('"HA role"') || l.includes('"level":40') || l.includes('"level":50'));
      return all
        .slice(-lines)
        .map((l) => l.slice(0, 400))
        .join('\n');
    } catch {
      return '';
    }
  }

  /** An ng command to a relay, from inside its own namespace (works while its link is down). */
  async ng(name: RelayName, command: Json, timeoutMs = 2000): Promise<Json> {
    const reply = await this.drivers[name]!.request({ op: 'ng', ng: `127.0.0.1:${NG_PORT}`, command, timeoutMs: Math.max(100, timeoutMs / 3) }, timeoutMs + 1000);
    return (reply.reply as Json) ?? { result: 'error', 'error-reason': String(reply.error) };
  }

  /** `rtphub ctl ha` in structured form. */
  async ha(name: RelayName): Promise<HaStatus> {
    return (await this.ng(name, { command: 'cli', 'cli-args': 'ha status' })) as HaStatus;
  }

  /** Runs the real `rtphub ctl` inside a relay's namespace; resolves with its JSON output. */
  async ctl(name: RelayName, args: string[], timeoutMs = 10_000): Promise<Json> {
    const [command, ...rest] = rtphubCommand();
    const out = await this.net.exec(name, command, [...rest, 'ctl', `--ng=127.0.0.1:${NG_PORT}`, `--timeout=${Math.floor(timeoutMs / 3)}`, ...args], timeoutMs + 5000);
    return JSON.parse(out) as Json;
  }

  async waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const check = async (): Promise<boolean> => {
      try {
        return await condition();
      } catch {
        return false;
      }
    };
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The relay that is active (asked from inside each namespace), or null. */
  async activeRelay(): Promise<RelayName | null> {
    for (const name of ['a', 'b'] as const) {
      if (!this.relays[name]) continue;
      if ((await this.ha(name).catch(() => null))?.role === 'active') return name;
    }
    return null;
  }

  /**
   * Sets up `count` more calls over ng through the shared address at `rate` per second and starts
   * their media. Returns their endpoint indexes; throws if any setup failed.
   */
  async setupCalls(count: number, rate: number, prefix = 'call'): Promise<{ indexes: number[]; ms: number; setupMs: Json }> {
    const first = this.callIds.length;
    if (first + count > this.options.calls) throw new Error(`the endpoints carry ${this.options.calls} calls`);
    const calls = [];
    for (let i = first; i < first + count; i++) {
      const [caller, callee] = [this.endpoint(this.callers, i), this.endpoint(this.callees, i)];
      calls.push({ id: `${prefix}-${i}`, caller: [this.net.address('caller'), caller], callee: [this.net.address('callee'), callee] });
    }
    const reply = await this.drivers.caller!.request({ op: 'setup', ng: `${VIP}:${NG_PORT}`, rate, calls }, 60_000 + (count * 2000) / rate);
    const ports = reply.ports as Array<[number, number] | null>;
    if (!ports || (reply.failed as number) > 0) throw new Error(`call setup failed: ${JSON.stringify(reply.errors ?? reply.error)}`);
    calls.forEach((c, k) => (this.callIds[first + k] = c.id));
    this.relayPorts.push(...(ports as Array<[number, number]>));
    await this.startMedia();
    return { indexes: calls.map((_, k) => first + k), ms: reply.ms as number, setupMs: reply.setup_ms as Json };
  }

  /** Deletes calls over ng (their endpoints go on sending into the void). */
  async deleteCalls(ids: string[], rate: number): Promise<Json> {
    return this.drivers.caller!.request({ op: 'delete', ng: `${VIP}:${NG_PORT}`, rate, ids }, 60_000 + (ids.length * 2000) / rate);
  }

  /** Writes raw bytes to a TCP port from the caller's namespace (a stand-in replication peer). */
  async tcp(host: string, port: number, chunks: Buffer[], waitMs = 1000): Promise<{ closed: boolean; acks: number[] }> {
    const reply = await this.drivers.caller!.request({ op: 'tcp', host, port, chunks: chunks.map((c) => c.toString('base64')), waitMs }, waitMs + 5000);
    return { closed: reply.closed as boolean, acks: reply.acks as number[] };
  }

  /** Offers and answers for calls with no endpoints (replication load); `hangup`: each deleted at once. */
  async setupSignallingOnly(ids: string[], rate: number, hangup = false): Promise<Json> {
    const calls = ids.map((id, k) => ({ id, caller: [this.net.address('caller'), 40000 + 2 * (k % 10000)], callee: [this.net.address('callee'), 40000 + 2 * (k % 10000)] }));
    return this.drivers.caller!.request({ op: 'setup', ng: `${VIP}:${NG_PORT}`, rate, calls, hangup }, 60_000 + (ids.length * 2000) / rate);
  }

  private endpoint(groups: PeerGroup[], i: number): number {
    const g = groups.find((x) => i >= x.first && i < x.first + x.count)!;
    return g.ports[i - g.first];
  }

  private async startMedia(): Promise<void> {
    for (const [groups, side] of [
      [this.callers, 0],
      [this.callees, 1],
    ] as const) {
      for (const g of groups) {
        const ports = Array.from({ length: g.count }, (_, k) => this.relayPorts[g.first + k]?.[side] ?? 0);
        await g.channel.request(`to ${VIP} ${ports.join(' ')}`, 10_000);
      }
    }
  }

  /** Starts a measurement interval at every endpoint. */
  async mark(): Promise<void> {
    await Promise.all([...this.callers, ...this.callees].map((g) => g.channel.request('mark', 10_000)));
  }

  /** Per-call gaps and packet counts since the mark, from both sides' endpoints. */
  async measure(): Promise<CallMeasure> {
    const read = async (groups: PeerGroup[]): Promise<PeerReport[]> =>
      Promise.all(
        groups.map(async (g) => {
          const r = await g.channel.request('report', 20_000);
          return {
            sent: r.sent as number,
            sendErrors: r.send_errors as number,
            behind: r.behind as number,
            rx: r.rx as number[],
            gapUs: r.gap_us as number[],
            silentUs: r.silent_us as number[],
          };
        }),
      );
    const [callers, callees] = await Promise.all([read(this.callers), read(this.callees)]);
    const flat = (reports: PeerReport[], key: 'rx' | 'gapUs' | 'silentUs'): number[] => reports.flatMap((r) => r[key]);
    const n = this.callIds.length;
    const [gapA, gapB] = [flat(callers, 'gapUs'), flat(callees, 'gapUs')];
    const [silentA, silentB] = [flat(callers, 'silentUs'), flat(callees, 'silentUs')];
    const [rxA, rxB] = [flat(callers, 'rx'), flat(callees, 'rx')];
    const all = [...callers, ...callees];
    const periodMs = this.callers.flatMap((g) => Array.from({ length: g.count }, () => g.periodUs / 1000));
    return {
      periodMs: periodMs.slice(0, n),
      gapMs: Array.from({ length: n }, (_, i) => Math.max(gapA[i], gapB[i]) / 1000),
      silentMs: Array.from({ length: n }, (_, i) => Math.max(silentA[i], silentB[i]) / 1000),
      rx: Array.from({ length: n }, (_, i) => Math.min(rxA[i], rxB[i])),
      sent: all.reduce((s, r) => s + r.sent, 0),
      sendErrors: all.reduce((s, r) => s + r.sendErrors, 0),
      behind: all.reduce((s, r) => s + r.behind, 0),
    };
  }

  /** Resident memory of a relay process (kB), from /proc. */
  rssKb(name: RelayName): number {
    const relay = this.relays[name];
    if (!relay) return 0;
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relay.pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  }

  async destroy(): Promise<void> {
    await this.net.destroy();
    for (const log of this.logs) log.end();
    this.tools.remove();
  }
}

export interface HaStatus {
  result?: string;
  role?: 'active' | 'standby';
  epoch?: number;
  peer?: { node?: string; role?: string; epoch?: number; alive?: number; sessions?: number };
  replication?: Record<string, number>;
  calls?: { own?: number; standby?: number; digest?: string };
  takeovers?: number;
  switchovers?: number;
  'split brains'?: number;
  'step downs'?: number;
  'last takeover ms'?: number;
  [key: string]: unknown;
}

/**
 * Calls lost: those that carried no packet in one direction or the other during a measured window
 * (measure one that starts once the failover has settled; indexes into the measure).
 */
export function lostCalls(m: CallMeasure): number[] {
  return m.rx.flatMap((n, i) => (n === 0 ? [i] : []));
}

/** Percentile of a list of numbers (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
