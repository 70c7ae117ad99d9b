/**
 * Keep-alives between two relays (seed 001): every `intervalMs` each relay sends its peer a
 * small UDP datagram with its node id, epoch, role, priority, session count and load. A peer is
 * lost after `missed` consecutive intervals without one. UDP, not the replication TCP link, so a
 * slow replication stream never delays a keep-alive.
 *
 * The socket and the watch live in a worker thread (keepalive-worker.ts): at a 20 ms interval a
 * main thread busy with a burst of offers, a full resync or a garbage collection would otherwise
 * stop sending keep-alives (the peer takes over a relay that is only busy) or read its peer's
 * late (and take over a peer that is alive). The main thread pushes its state (role, epoch,
 * sessions) to the worker; the worker sends it, and stops sending when the main thread has not
 * pushed for `mainTimeoutMs`, so a control plane that hangs does get replaced. Counters are in
 * shared memory, readable at any time.
 */
import { EventEmitter } from 'node:events';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BDict, decode, encode, isBytes, isDict } from '../ng/bencode';

export type Role = 'active' | 'standby';

export interface KeepAliveMessage {
  node: string;
  epoch: number;
  role: Role;
  priority: number;
  sessions: number;
  load: number;
  /** The sender hands its calls over to the receiver (switchover, or stepping down). */
  handover: boolean;
}

export interface KeepAliveOptions {
  listen: { address: string; port: number };
  peer: { host: string; port: number };
  intervalMs: number;
  missed: number;
  state: () => KeepAliveMessage;
  /** Keep-alives stop when the main thread has not refreshed the state for this long (ms). */
  mainTimeoutMs?: number;
  /**
   * The shared address this thread claims itself (answering ARP for it: `arp_ignore` 0, then
   * announcing it) the moment it declares an active peer lost while this relay is standby, so the
   * takeover of the media does not wait for a busy main thread. Read at start(); null: never.
   */
  claim?: () => SharedAddressClaim | null;
}

/** What the keep-alive thread needs to claim a shared address held on `lo` (shared-address.ts, `held`). */
export interface SharedAddressClaim {
  device: string;
  address: string;
}

export interface KeepAliveStats {
  sent: number;
  received: number;
  malformed: number;
  lost: number;
  lastHeardAt: number;
  /** Longest time between two keep-alives sent (monotonic clock, ms): this relay's own stalls. */
  maxSendGapMs: number;
  /** Longest time between two keep-alives heard while the peer was alive (monotonic clock, ms). */
  maxHeardGapMs: number;
  /** Keep-alives the peer's host refused (ICMP port unreachable: nothing listening). */
  refused: number;
  /** Time the keep-alive thread itself ran late by more than half an interval (ms): not counted as the peer's silence. */
  stalledMs: number;
}

/** Layout of the shared counters (Float64Array). */
export const STAT_FIELDS = ['sent', 'received', 'malformed', 'lost', 'lastHeardAt', 'maxSendGapMs', 'maxHeardGapMs', 'refused', 'stalledMs'] as const;

/** Messages between the main thread and the keep-alive worker. */
export type ToWorker = { type: 'state'; state: KeepAliveMessage; now: boolean } | { type: 'suspect' } | { type: 'close' };
export type FromWorker =
  | { type: 'ready'; scheduling: string }
  | { type: 'failed'; message: string }
  | { type: 'message'; message: KeepAliveMessage }
  | { type: 'lost'; message: KeepAliveMessage; silentMs: number; suspected: boolean; claimedAt: number };

export interface WorkerSetup {
  listen: { address: string; port: number };
  peer: { host: string; port: number };
  intervalMs: number;
  missed: number;
  mainTimeoutMs: number;
  stats: SharedArrayBuffer;
  claim: SharedAddressClaim | null;
}

export function parseKeepAlive(bytes: Buffer): KeepAliveMessage | null {
  let value;
  try {
    value = decode(bytes);
  } catch {
    return null;
  }
  if (!isDict(value)) return null;
  const d = value as BDict;
  const role = isBytes(d.r) ? d.r.toString() : '';
  const node = isBytes(d.n) ? d.n.toString() : '';
  const ints = [d.e, d.p, d.s, d.l, d.h];
  if (node === '' || (role !== 'active' && role !== 'standby') || ints.some((v) => typeof v !== 'number')) return null;
  return {
    node,
    role,
    epoch: d.e as number,
    priority: d.p as number,
    sessions: d.s as number,
    load: d.l as number,
    handover: d.h === 1,
  };
}

export function encodeKeepAlive(s: KeepAliveMessage): Buffer {
  return encode({ n: s.node, e: s.epoch, r: s.role, p: s.priority, s: s.sessions, l: s.load, h: s.handover ? 1 : 0 });
}

/** Starts the worker from this file's sibling, through tsx when running from source (tests). */
function startWorker(setup: WorkerSetup): Worker {
  const ext = extname(__filename);
  const file = join(__dirname, `keepalive-worker${ext}`);
  if (ext === '.ts') {
    return new Worker(`require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(file)});`, { eval: true, workerData: setup });
  }
  return new Worker(file, { workerData: setup });
}

/** Why the peer was declared lost: how long it had been silent, and whether it was suspected. */
export interface Loss {
  silentMs: number;
  suspected: boolean;
  /** When the keep-alive thread claimed and announced the shared address (Unix ms), 0 if it did not. */
  claimedAt: number;
}

export class KeepAlive extends EventEmitter<{ message: [KeepAliveMessage]; lost: [KeepAliveMessage, Loss] }> {
  private readonly shared = new SharedArrayBuffer(STAT_FIELDS.length * 8);
  private readonly counters = new Float64Array(this.shared);
  private worker: Worker | null = null;
  private refresh: NodeJS.Timeout | null = null;
  private last: KeepAliveMessage | null = null;
  private reportedLost = false;
  /** The keep-alive thread's scheduling (real-time when allowed). */
  scheduling = 'default';

  constructor(private readonly options: KeepAliveOptions) {
    super();
  }

  get stats(): KeepAliveStats {
    return Object.fromEntries(STAT_FIELDS.map((name, i) => [name, this.counters[i]])) as Record<(typeof STAT_FIELDS)[number], number>;
  }

  async start(): Promise<void> {
    const intervalMs = this.options.intervalMs;
    const worker = startWorker({
      listen: this.options.listen,
      peer: this.options.peer,
      intervalMs,
      missed: this.options.missed,
      mainTimeoutMs: this.options.mainTimeoutMs ?? Math.max(10_000, 100 * intervalMs),
      stats: this.shared,
      claim: this.options.claim?.() ?? null,
    });
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`keep-alive worker exited (${code})`)));
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          this.scheduling = m.scheduling;
          resolve();
        } else if (m.type === 'failed') {
          reject(new Error(`keep-alive socket: ${m.message}`));
        } else {
          this.fromWorker(m);
        }
      });
      this.push(true);
    });
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    worker.on('error', () => undefined);
    worker.unref();
    this.refresh = setInterval(() => this.push(false), Math.max(20, 5 * intervalMs));
    this.refresh.unref();
  }

  /** The last message heard from the peer, if any. */
  get peer(): KeepAliveMessage | null {
    return this.last;
  }

  /** True while the peer is heard. */
  get peerAlive(): boolean {
    return this.last !== null && !this.reportedLost;
  }

  /** Sends one keep-alive now (on top of the periodic ones), e.g. to announce a role change. */
  send(): void {
    this.push(true);
  }

  /**
   * Other evidence says the peer's process may be gone (its replication connections closed): it
   * is lost once one keep-alive is missed, instead of `missed`. A keep-alive heard clears this.
   */
  suspect(): void {
    this.worker?.postMessage({ type: 'suspect' } satisfies ToWorker);
  }

  close(): void {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = null;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    worker.postMessage({ type: 'close' } satisfies ToWorker);
    void worker.terminate();
  }

  private push(now: boolean): void {
    this.worker?.postMessage({ type: 'state', state: this.options.state(), now } satisfies ToWorker);
  }

  private fromWorker(m: FromWorker): void {
    if (m.type === 'message') {
      this.last = m.message;
      this.reportedLost = false;
      this.emit('message', m.message);
    } else if (m.type === 'lost') {
      this.reportedLost = true;
      this.emit('lost', m.message, { silentMs: m.silentMs, suspected: m.suspected, claimedAt: m.claimedAt });
    }
  }
}
