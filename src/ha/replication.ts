/**
 * Streaming restoration records to the peer relay over TCP.
 *
 * Sender: connects to the peer (reconnecting every `reconnectMs`, at once after `reset()`), says
 * HELLO, sends a full sync of every record it owns, then upserts and deletes in the order they
 * happen; the frames of one tick leave in one write. Memory stays bounded when the peer is slow:
 * the only per-call state is the latest record of each call (which the relay keeps anyway); when
 * more than `maxBufferedBytes` wait in the socket, incremental frames stop and a full sync
 * follows once it drains. The peer acknowledges (cumulatively) the frames it has accepted; the
 * time from a record's writing to its acknowledgement is the replication lag.
 *
 * Receiver: accepts peer connections, decodes frames strictly, and hands records to the sink in
 * order: one call's records one at a time, different calls' at once; HELLO, SYNC_END and
 * HANDOVER wait for everything before them (see ReplicationReceiver). A peer's new connection
 * replaces its old one, whose frames not yet applied are dropped (the new connection starts with
 * a full sync that supersedes them); a connection the peer closed (its process may have died)
 * still has the frames it delivered applied: a crashed relay's last records are not thrown away.
 * A full sync ends with the set of calls the peer still has, so calls it dropped while the link
 * was down are removed too (unless its SYNC_END says `partial`: a relay still rewriting the
 * records of calls it just took over), and a link that drops and returns leaves both tables
 * identical, with nothing lost or duplicated. Frames are numbered one by one; a malformed frame,
 * a gap or repeat in the numbering, or frames in an impossible order (anything before HELLO,
 * SYNC_END without SYNC_BEGIN) count as protocol errors and end the connection. A
 * well-framed record the sink refuses (malformed, stale, foreign) is counted as rejected and the
 * connection goes on.
 */
import { EventEmitter } from 'node:events';
import { RecordFormatError } from '../errors';
import { BDict, decode, encode, isBytes, isDict } from '../ng/bencode';
import { encodeFrame, Frame, FrameDecoder, FrameError, FrameType } from './frames';
import { CallRecord, decodeRecord } from './restoration-record';
import type { ReplicationIo } from './replication-io';

export interface PeerIdentity {
  node: string;
  epoch: number;
  priority: number;
}

export interface SenderStats {
  connected: boolean;
  connects: number;
  fullSyncs: number;
  overflows: number;
  framesSent: number;
  bytesSent: number;
  /** Replication lag samples (ms), newest last, at most 4096. */
  lagMs: number[];
}

export interface ReplicationSenderOptions {
  /** The replication I/O thread, which owns the link's socket. */
  io: ReplicationIo;
  peer: { host: string; port: number };
  identity: () => PeerIdentity;
  /** Every record this relay owns, encoded, with its write time (for the full sync). */
  snapshot: () => Iterable<{ callId: string; bytes: Buffer; writtenAt: number }>;
  /**
   * False while the snapshot may lack calls this relay owns (records still being written after a
   * takeover): such a full sync says so (SYNC_END `partial`), and the peer keeps its other copies.
   */
  complete?: () => boolean;
  maxBufferedBytes?: number;
  reconnectMs?: number;
}

const LAG_SAMPLES = 4096;

export class ReplicationSender extends EventEmitter<{ closed: [] }> {
  readonly stats: SenderStats = { connected: false, connects: 0, fullSyncs: 0, overflows: 0, framesSent: 0, bytesSent: 0, lagMs: [] };
  /** The current outbound link, as the I/O thread knows it (0: none yet). */
  private generation = 0;
  private sequence = 0;
  /** The newest sequence the peer acknowledged on the current connection (null: none yet). */
  private lastAcked: number | null = null;
  private inSync = false;
  /** Incremental frames stopped (too much waiting in the socket); a full sync follows the drain. */
  private awaitingDrain = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  /** Frames of this tick not yet handed to the I/O thread, and their records' write times. */
  private frames: Buffer[] = [];
  private lags: number[] = [];
  private readonly ackWaiters = new Set<() => void>();
  private readonly maxBuffered: number;
  private readonly io: ReplicationIo;

  constructor(private readonly options: ReplicationSenderOptions) {
    super();
    this.maxBuffered = options.maxBufferedBytes ?? 16 << 20;
    this.io = options.io;
    this.io.on('out-connected', (generation) => {
      if (generation === this.generation) this.connected();
    });
    this.io.on('out-closed', (generation) => {
      if (generation === this.generation) this.linkClosed();
    });
    this.io.on('out-acked', (generation, sequence, lags) => {
      if (generation === this.generation) this.acked(sequence, lags);
    });
    this.io.on('out-overflow', (generation) => {
      if (generation !== this.generation) return;
      this.stats.overflows++;
      this.inSync = false;
      this.awaitingDrain = true;
    });
    this.io.on('out-drain', (generation) => {
      if (generation !== this.generation || !this.awaitingDrain) return;
      this.awaitingDrain = false;
      if (this.stats.connected) this.fullSync();
    });
  }

  start(): void {
    this.connect();
  }

  /** A new version of a record this relay owns. */
  upsert(bytes: Buffer, writtenAt: number): void {
    if (!this.live()) return;
    this.send(FrameType.Upsert, bytes, writtenAt);
  }

  /** An owned call ended; `version` follows its last record, `epoch` is the owner's. */
  remove(callId: string, version: number, epoch: number): void {
    if (!this.live()) return;
    this.send(FrameType.Delete, encode({ id: callId, v: version, e: epoch }));
  }

  /** Sends a full sync now (after a role change), if the link is up. */
  resync(): void {
    if (this.stats.connected && !this.awaitingDrain) this.fullSync();
  }

  /** Drops the connection and connects again at once (the peer was lost: TCP may be stalled). */
  reset(): void {
    if (this.closed) return;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.io.destroyOutbound(this.generation);
    this.disconnected();
    this.connect();
  }

  /** Hands every owned call to the peer; the frame's sequence, or null when the link is not up and in sync. */
  handover(): number | null {
    if (!this.live()) return null;
    return this.send(FrameType.Handover);
  }

  /** Resolves true once the peer acknowledged `sequence` on the current connection, false after `timeoutMs`. */
  async acknowledged(sequence: number, timeoutMs: number): Promise<boolean> {
    const done = (): boolean => this.lastAcked !== null && ((this.lastAcked - sequence) | 0) >= 0;
    const deadline = Date.now() + timeoutMs;
    while (!done() && Date.now() < deadline && this.live()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, Math.max(1, deadline - Date.now()));
        function finish(): void {
          clearTimeout(timer);
          resolve();
        }
        this.ackWaiters.add(finish);
      });
    }
    return done();
  }

  /** True while the link is up and the peer has had a full sync. */
  get inSyncWithPeer(): boolean {
    return this.live();
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.io.destroyOutbound(this.generation);
    this.disconnected();
  }

  private live(): boolean {
    return this.inSync && this.stats.connected;
  }

  private connect(): void {
    if (this.closed) return;
    this.generation++;
    this.frames = [];
    this.lags = [];
    this.io.connect(this.generation, this.options.peer.host, this.options.peer.port, this.maxBuffered);
  }

  private connected(): void {
    this.stats.connected = true;
    this.stats.connects++;
    this.lastAcked = null;
    this.awaitingDrain = false;
    const id = this.options.identity();
    this.send(FrameType.Hello, encode({ node: id.node, epoch: id.epoch, priority: id.priority }));
    this.fullSync();
  }

  private linkClosed(): void {
    const wasConnected = this.stats.connected;
    this.disconnected();
    if (this.closed) return;
    if (wasConnected) this.emit('closed');
    this.retry = setTimeout(() => this.connect(), this.options.reconnectMs ?? 200);
  }

  private disconnected(): void {
    this.stats.connected = false;
    this.inSync = false;
    this.awaitingDrain = false;
    this.lastAcked = null;
    this.frames = [];
    this.lags = [];
    for (const wake of this.ackWaiters) wake();
    this.ackWaiters.clear();
  }

  private fullSync(): void {
    if (!this.stats.connected) return;
    this.stats.fullSyncs++;
    this.send(FrameType.SyncBegin);
    // Not lag samples: a full sync repeats records written long ago.
    for (const r of this.options.snapshot()) this.send(FrameType.Upsert, r.bytes);
    const complete = this.options.complete?.() ?? true;
    this.send(FrameType.SyncEnd, complete ? undefined : encode({ partial: 1 }));
    this.inSync = true;
  }

  private send(type: FrameType, payload?: Buffer, writtenAt?: number): number {
    const sequence = (this.sequence = (this.sequence + 1) >>> 0);
    const frame = encodeFrame(type, sequence, payload);
    // The frames of one tick (a burst of records, a full sync) go to the I/O thread in one message.
    if (this.frames.length === 0) {
      const generation = this.generation;
      process.nextTick(() => this.flush(generation));
    }
    this.frames.push(frame);
    if (writtenAt !== undefined) this.lags.push(sequence, writtenAt);
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    return sequence;
  }

  private flush(generation: number): void {
    if (generation !== this.generation || this.frames.length === 0) return;
    this.io.write(generation, this.frames, this.lags);
    this.frames = [];
    this.lags = [];
  }

  private acked(sequence: number, lags: number[]): void {
    this.lastAcked = sequence;
    for (const lag of lags) this.stats.lagMs.push(lag);
    if (this.stats.lagMs.length > LAG_SAMPLES) this.stats.lagMs.splice(0, this.stats.lagMs.length - LAG_SAMPLES);
    for (const wake of this.ackWaiters) wake();
    this.ackWaiters.clear();
  }
}

/** Whether a SYNC_END says its full sync was partial (an empty payload: complete, as older relays send it). */
function syncEndPartial(payload: Buffer): boolean {
  if (payload.length === 0) return false;
  let value;
  try {
    value = decode(payload);
  } catch (error) {
    throw new FrameError(`malformed SYNC_END: ${(error as Error).message}`);
  }
  if (!isDict(value)) throw new FrameError('malformed SYNC_END');
  return (value as BDict).partial === 1;
}

/** What the receiving relay does with replicated records. */
export interface RecordSink {
  /** Applies a newer version; throws RecordFormatError for a stale or foreign one. */
  upsert(record: CallRecord, from: PeerIdentity): Promise<void>;
  /** The peer ended a call it owned at `epoch` (0: not said). */
  remove(callId: string, version: number, epoch: number, from: PeerIdentity): Promise<void>;
  /** After a full sync: the peer owns exactly these calls now. */
  synced(callIds: Set<string>, from: PeerIdentity, partial: boolean): Promise<void>;
  /** The peer hands every call it owns over; resolves once they are taken (then the frame is acknowledged). */
  handover(from: PeerIdentity): Promise<void>;
}

export interface ReceiverStats {
  /**
   * Per incremental record (not full syncs): its write time on the peer to its reading here (ms),
   * newest last, at most LAG_SAMPLES. Against the peer's clock: exact when both relays share one
   * (the lab), as good as their NTP otherwise.
   */
  readLagMs: number[];
  connections: number;
  frames: number;
  upserts: number;
  deletes: number;
  fullSyncs: number;
  rejected: number;
  protocolErrors: number;
}

/** One peer connection on the receiving side. */
interface Connection {
  /** The I/O thread's id of the connection. */
  id: number;
  decoder: FrameDecoder;
  peer: PeerIdentity | null;
  /** The sequence number the next frame must carry (null before the first frame). */
  expected: number | null;
  /** Call ids of the full sync in progress, if one is. */
  syncing: Set<string> | null;
  /** Frames not yet applied, oldest first. */
  unacked: Array<{ sequence: number; done: boolean }>;
  /** Replaced by a newer connection of the same peer, or failed: its frames not yet applied are dropped. */
  dead: boolean;
  /**
   * Closed by the peer (its process may have died) with frames received but not yet applied: they
   * are still applied, in order (a crashed relay's last records are worth keeping).
   */
  closed: boolean;
}

/** What a frame does once its turn comes. */
type Step = () => Promise<void> | void;

export class ReplicationReceiver extends EventEmitter<{
  error: [Error];
  hello: [PeerIdentity];
  /** The peer closed its current connection (its process may be gone). */
  gone: [PeerIdentity];
}> {
  readonly stats: ReceiverStats = { readLagMs: [], connections: 0, frames: 0, upserts: 0, deletes: 0, fullSyncs: 0, rejected: 0, protocolErrors: 0 };
  private readonly connections = new Map<number, Connection>();
  private readonly byPeer = new Map<string, Connection>();
  /**
   * Ordering, shared by every connection: records of one call are applied in arrival order, one at
   * a time; records of different calls overlap (each restore waits on the data plane's workers,
   * so one at a time would cap the rate at a few hundred records per second); HELLO, SYNC_END and
   * HANDOVER wait for everything before them and hold back everything after them.
   */
  private barrier: Promise<void> = Promise.resolve();
  private readonly inflight = new Set<Promise<void>>();
  private readonly byCall = new Map<string, Promise<void>>();

  constructor(
    private readonly sink: RecordSink,
    private readonly selfNode: string,
    private readonly io: ReplicationIo,
  ) {
    super();
    io.on('in-open', (id) => this.accept(id));
    io.on('in-data', (id, chunk) => this.data(id, chunk));
    io.on('in-close', (id) => this.closedByPeer(id));
  }

  listen(address: string, port: number): Promise<{ address: string; port: number }> {
    return this.io.listen(address, port);
  }

  close(): Promise<void> {
    for (const c of [...this.connections.values()]) this.drop(c);
    return Promise.resolve();
  }

  private accept(id: number): void {
    this.stats.connections++;
    this.connections.set(id, { id, decoder: new FrameDecoder(), peer: null, expected: null, syncing: null, unacked: [], dead: false, closed: false });
  }

  private data(id: number, chunk: Buffer): void {
    const conn = this.connections.get(id);
    if (!conn || conn.dead) return;
    try {
      for (const frame of conn.decoder.push(chunk)) {
        this.stats.frames++;
        this.receive(conn, frame);
      }
    } catch (error) {
      this.fail(conn, error as Error);
    }
  }

  private closedByPeer(id: number): void {
    const conn = this.connections.get(id);
    if (!conn) return;
    const current = conn.peer !== null && this.byPeer.get(conn.peer.node) === conn && !conn.dead;
    if (current && conn.unacked.length > 0) conn.closed = true;
    else this.drop(conn);
    if (current) this.emit('gone', conn.peer!);
  }

  /**
   * Checks a frame against the connection's state (in arrival order, at once) and queues what it
   * does. Throws FrameError for a frame that cannot come at this point of the stream.
   */
  private receive(conn: Connection, frame: Frame): void {
    // Frames are numbered by the sender, one by one: a gap or a repeat is a broken stream.
    if (conn.expected !== null && frame.sequence !== conn.expected) {
      throw new FrameError(`replication frame ${frame.sequence} out of order (expected ${conn.expected})`);
    }
    conn.expected = (frame.sequence + 1) >>> 0;
    if (frame.type === FrameType.Hello) {
      const identity = this.hello(conn, frame.payload);
      this.barrierStep(conn, frame, () => this.adopt(conn, identity));
      return;
    }
    const peer = conn.peer;
    if (!peer) throw new FrameError('replication frame before HELLO');
    switch (frame.type) {
      case FrameType.SyncBegin:
        if (conn.syncing) throw new FrameError('SYNC_BEGIN inside a full sync');
        conn.syncing = new Set();
        this.barrierStep(conn, frame, () => undefined);
        return;
      case FrameType.SyncEnd: {
        const ids = conn.syncing;
        if (!ids) throw new FrameError('SYNC_END without SYNC_BEGIN');
        const partial = syncEndPartial(frame.payload);
        conn.syncing = null;
        this.barrierStep(conn, frame, async () => {
          this.stats.fullSyncs++;
          await this.sink.synced(ids, peer, partial);
        });
        return;
      }
      case FrameType.Handover:
        // Not taken: no acknowledgement (the connection ends), so the peer does not step down.
        this.barrierStep(conn, frame, () => this.sink.handover(peer).catch((error: Error) => this.fail(conn, error)));
        return;
      case FrameType.Upsert:
        this.upsert(conn, frame, peer);
        return;
      case FrameType.Delete:
        this.remove(conn, frame, peer);
        return;
      default:
        throw new FrameError(`unexpected replication frame type ${frame.type}`);
    }
  }

  private upsert(conn: Connection, frame: Frame, peer: PeerIdentity): void {
    let record: CallRecord;
    try {
      record = decodeRecord(frame.payload);
    } catch (error) {
      this.rejectedFrame(conn, frame, error as Error);
      return;
    }
    conn.syncing?.add(record.callId);
    if (!conn.syncing) {
      this.stats.readLagMs.push(Math.max(0, Date.now() - record.writtenAt));
      if (this.stats.readLagMs.length > LAG_SAMPLES) this.stats.readLagMs.splice(0, this.stats.readLagMs.length - LAG_SAMPLES);
    }
    this.callStep(conn, frame, record.callId, async () => {
      this.stats.upserts++;
      await this.sink.upsert(record, peer);
    });
  }

  private remove(conn: Connection, frame: Frame, peer: PeerIdentity): void {
    let d: BDict | null = null;
    try {
      const value = decode(frame.payload);
      d = isDict(value) ? (value as BDict) : null;
    } catch {
      d = null;
    }
    if (!d || !isBytes(d.id) || typeof d.v !== 'number' || (d.e !== undefined && typeof d.e !== 'number')) {
      this.rejectedFrame(conn, frame, new RecordFormatError('malformed DELETE'));
      return;
    }
    const [callId, version, epoch] = [d.id.toString(), d.v, (d.e as number | undefined) ?? 0];
    this.callStep(conn, frame, callId, async () => {
      this.stats.deletes++;
      await this.sink.remove(callId, version, epoch, peer);
    });
  }

  /** A frame ordered after the barrier and the earlier frames of the same call only. */
  private callStep(conn: Connection, frame: Frame, callId: string, step: Step): void {
    const before = [this.barrier, this.byCall.get(callId) ?? this.barrier];
    const run = this.track(conn, frame, Promise.all(before), step);
    this.byCall.set(callId, run);
    this.inflight.add(run);
    void run.then(() => {
      this.inflight.delete(run);
      if (this.byCall.get(callId) === run) this.byCall.delete(callId);
    });
  }

  /** A frame ordered after everything before it, and before everything after it. */
  private barrierStep(conn: Connection, frame: Frame, step: Step): void {
    const before = Promise.all([this.barrier, ...this.inflight]);
    this.inflight.clear();
    this.barrier = this.track(conn, frame, before, step);
  }

  /**
   * Runs `step` after `before` (unless the connection died). A HANDOVER done is confirmed to the
   * I/O thread, which acknowledges every other frame on receipt and that one only now.
   */
  private track(conn: Connection, frame: Frame, before: Promise<unknown>, step: Step): Promise<void> {
    const entry = { sequence: frame.sequence, done: false };
    conn.unacked.push(entry);
    return before
      .then(() => (conn.dead ? undefined : step()))
      .catch((error: Error) => this.rejected(error))
      .then(() => {
        entry.done = true;
        if (frame.type === FrameType.Handover && !conn.dead) this.io.confirm(conn.id, frame.sequence);
        this.applied(conn);
      });
  }

  private rejectedFrame(conn: Connection, frame: Frame, error: Error): void {
    const entry = { sequence: frame.sequence, done: true };
    conn.unacked.push(entry);
    this.rejected(error);
    this.applied(conn);
  }

  /** Forgets the frames done, in order; a connection the peer closed goes once all are. */
  private applied(conn: Connection): void {
    while (conn.unacked.length > 0 && conn.unacked[0].done) conn.unacked.shift();
    if (conn.closed && conn.unacked.length === 0) this.drop(conn);
  }

  private drop(conn: Connection): void {
    conn.dead = true;
    this.io.destroyInbound(conn.id);
    this.connections.delete(conn.id);
    if (conn.peer && this.byPeer.get(conn.peer.node) === conn) this.byPeer.delete(conn.peer.node);
  }

  private fail(conn: Connection, error: Error): void {
    if (conn.dead) return;
    this.stats.protocolErrors++;
    this.emit('error', error);
    this.drop(conn);
  }

  private rejected(error: Error): void {
    this.stats.rejected++;
    this.emit('error', error);
  }

  /** Checks a HELLO (the first frame of a connection, and only the first). */
  private hello(conn: Connection, payload: Buffer): PeerIdentity {
    if (conn.peer) throw new FrameError('second HELLO on one connection');
    let value;
    try {
      value = decode(payload);
    } catch (error) {
      throw new FrameError(`malformed HELLO: ${(error as Error).message}`);
    }
    const d = isDict(value) ? (value as BDict) : null;
    const node = d && isBytes(d.node) ? d.node.toString() : '';
    if (!d || node === '' || typeof d.epoch !== 'number' || typeof d.priority !== 'number') throw new FrameError('malformed HELLO');
    if (node === this.selfNode) throw new FrameError(`peer claims this relay's own node id '${node}'`);
    conn.peer = { node, epoch: d.epoch, priority: d.priority };
    return conn.peer;
  }

  /** A peer's new connection replaces its older one, whose frames not yet applied are dropped. */
  private adopt(conn: Connection, identity: PeerIdentity): void {
    const previous = this.byPeer.get(identity.node);
    if (previous && previous !== conn) this.drop(previous);
    this.byPeer.set(identity.node, conn);
    this.emit('hello', identity);
  }
}
