/**
 * Keep-alives between two relays (seed 001): every `intervalMs` each relay sends its peer a
 * small UDP datagram with its node id, epoch, role, priority, session count and load. A peer is
 * lost after `missed` consecutive intervals without one. UDP, not the replication TCP link, so a
 * slow replication stream never delays a keep-alive.
 *
 * A watcher whose own event loop stalled cannot tell a silent peer from datagrams still waiting
 * in its socket, so a check that runs late does not count misses; it waits for the next one.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
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
}

export interface KeepAliveStats {
  sent: number;
  received: number;
  malformed: number;
  lost: number;
  lastHeardAt: number;
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

export class KeepAlive extends EventEmitter<{ message: [KeepAliveMessage]; lost: [KeepAliveMessage] }> {
  readonly stats: KeepAliveStats = { sent: 0, received: 0, malformed: 0, lost: 0, lastHeardAt: 0 };
  private socket: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last: KeepAliveMessage | null = null;
  private lastCheck = 0;
  private reportedLost = false;

  constructor(private readonly options: KeepAliveOptions) {
    super();
  }

  async start(): Promise<void> {
    const socket = dgram.createSocket(isIPv6(this.options.listen.address) ? 'udp6' : 'udp4');
    this.socket = socket;
    socket.on('message', (msg) => this.receive(msg));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.listen.port, this.options.listen.address, () => resolve());
    });
    this.lastCheck = Date.now();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.send();
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
    if (!this.socket) return;
    const s = this.options.state();
    const bytes = encode({ n: s.node, e: s.epoch, r: s.role, p: s.priority, s: s.sessions, l: s.load, h: s.handover ? 1 : 0 });
    this.socket.send(bytes, this.options.peer.port, this.options.peer.host);
    this.stats.sent++;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.socket?.close();
    this.socket = null;
  }

  private receive(msg: Buffer): void {
    const message = parseKeepAlive(msg);
    if (!message) {
      this.stats.malformed++;
      return;
    }
    this.stats.received++;
    this.stats.lastHeardAt = Date.now();
    this.last = message;
    this.reportedLost = false;
    this.emit('message', message);
  }

  private tick(): void {
    const now = Date.now();
    const late = now - this.lastCheck > 2 * this.options.intervalMs;
    this.lastCheck = now;
    this.send();
    if (late || !this.last || this.reportedLost) return;
    if (now - this.stats.lastHeardAt < this.options.missed * this.options.intervalMs) return;
    this.reportedLost = true;
    this.stats.lost++;
    this.emit('lost', this.last);
  }
}
