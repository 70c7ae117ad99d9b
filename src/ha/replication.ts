/**
 * Streaming restoration records to the peer relay over TCP.
 *
 * Sender: connects to the peer (reconnecting with back-off), says HELLO, sends a full sync of
 * every record it owns, then upserts and deletes in the order they happen. Memory stays bounded
 * when the peer is slow: the only per-call state is the latest record of each call (which the
 * relay keeps anyway); when more than `maxBufferedBytes` wait in the socket, incremental frames
 * stop and a full sync follows once it drains. The peer ACKs the sequence it has applied; the
 * time from a record's writing to its ACK is the replication lag.
 *
 * Receiver: accepts peer connections, decodes frames strictly, and hands records to the sink in
 * order, one at a time. A full sync ends with the set of calls the peer still has, so calls it
 * dropped while the link was down are removed too: a link that drops and returns leaves both
 * tables identical, with nothing lost or duplicated. Malformed frames are counted and end the
 * connection.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { RecordFormatError } from '../errors';
import { BDict, decode, encode, isBytes, isDict } from '../ng/bencode';
import { encodeFrame, Frame, FrameDecoder, FrameError, FrameType } from './frames';
import { CallRecord, decodeRecord } from './restoration-record';

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
  peer: { host: string; port: number };
  identity: () => PeerIdentity;
  /** Every record this relay owns, encoded, with its write time (for the full sync). */
  snapshot: () => Iterable<{ callId: string; bytes: Buffer; writtenAt: number }>;
  maxBufferedBytes?: number;
  reconnectMs?: number;
}

const LAG_SAMPLES = 4096;

export class ReplicationSender {
  readonly stats: SenderStats = { connected: false, connects: 0, fullSyncs: 0, overflows: 0, framesSent: 0, bytesSent: 0, lagMs: [] };
  private socket: net.Socket | null = null;
  private sequence = 0;
  private inSync = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly pendingLag = new Map<number, number>();
  private readonly maxBuffered: number;

  constructor(private readonly options: ReplicationSenderOptions) {
    this.maxBuffered = options.maxBufferedBytes ?? 16 << 20;
  }

  start(): void {
    this.connect();
  }

  /** A new version of a record this relay owns. */
  upsert(bytes: Buffer, writtenAt: number): void {
    if (!this.live()) return;
    if (this.socket!.writableLength > this.maxBuffered) {
      this.stats.overflows++;
      this.inSync = false;
      this.socket!.once('drain', () => this.fullSync());
      return;
    }
    this.send(FrameType.Upsert, bytes, writtenAt);
  }

  remove(callId: string, version: number): void {
    if (!this.live()) return;
    this.send(FrameType.Delete, encode({ id: callId, v: version }));
  }

  /** Hands every owned call to the peer; false when the link is not up and in sync. */
  handover(): boolean {
    if (!this.live()) return false;
    this.send(FrameType.Handover);
    return true;
  }

  /** True while the link is up and the peer has had a full sync. */
  get inSyncWithPeer(): boolean {
    return this.live();
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.destroy();
  }

  private live(): boolean {
    return this.inSync && this.socket !== null && !this.socket.destroyed;
  }

  private connect(): void {
    if (this.closed) return;
    const socket = net.connect(this.options.peer.port, this.options.peer.host);
    socket.setNoDelay(true);
    this.socket = socket;
    const decoder = new FrameDecoder();
    socket.on('connect', () => {
      this.stats.connected = true;
      this.stats.connects++;
      const id = this.options.identity();
      this.send(FrameType.Hello, encode({ node: id.node, epoch: id.epoch, priority: id.priority }));
      this.fullSync();
    });
    socket.on('data', (chunk) => {
      try {
        for (const frame of decoder.push(chunk)) if (frame.type === FrameType.Ack) this.acked(frame.sequence);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.stats.connected = false;
      this.inSync = false;
      this.pendingLag.clear();
      if (this.socket === socket) this.socket = null;
      if (!this.closed) this.retry = setTimeout(() => this.connect(), this.options.reconnectMs ?? 200);
    });
  }

  private fullSync(): void {
    if (!this.socket || this.socket.destroyed) return;
    this.stats.fullSyncs++;
    this.send(FrameType.SyncBegin);
    for (const r of this.options.snapshot()) this.send(FrameType.Upsert, r.bytes, r.writtenAt);
    this.send(FrameType.SyncEnd);
    this.inSync = true;
  }

  private send(type: FrameType, payload?: Buffer, writtenAt?: number): void {
    const sequence = (this.sequence = (this.sequence + 1) >>> 0);
    const frame = encodeFrame(type, sequence, payload);
    if (writtenAt !== undefined && this.pendingLag.size < 65536) this.pendingLag.set(sequence, writtenAt);
    this.socket!.write(frame);
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
  }

  private acked(sequence: number): void {
    const now = Date.now();
    for (const [seq, writtenAt] of this.pendingLag) {
      if (((sequence - seq) | 0) < 0) break;
      this.pendingLag.delete(seq);
      this.stats.lagMs.push(now - writtenAt);
    }
    if (this.stats.lagMs.length > LAG_SAMPLES) this.stats.lagMs.splice(0, this.stats.lagMs.length - LAG_SAMPLES);
  }
}

/** What the receiving relay does with replicated records. */
export interface RecordSink {
  /** Applies a newer version; throws RecordFormatError for a stale or foreign one. */
  upsert(record: CallRecord, from: PeerIdentity): Promise<void>;
  remove(callId: string, version: number, from: PeerIdentity): Promise<void>;
  /** After a full sync: the peer owns exactly these calls now. */
  synced(callIds: Set<string>, from: PeerIdentity): Promise<void>;
}

export interface ReceiverStats {
  connections: number;
  frames: number;
  upserts: number;
  deletes: number;
  fullSyncs: number;
  rejected: number;
  protocolErrors: number;
}

export class ReplicationReceiver extends EventEmitter<{ error: [Error]; hello: [PeerIdentity]; handover: [PeerIdentity] }> {
  readonly stats: ReceiverStats = { connections: 0, frames: 0, upserts: 0, deletes: 0, fullSyncs: 0, rejected: 0, protocolErrors: 0 };
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly sink: RecordSink,
    private readonly selfNode: string,
  ) {
    super();
  }

  async listen(address: string, port: number): Promise<net.AddressInfo> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    return server.address() as net.AddressInfo;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let peer: PeerIdentity | null = null;
    let syncing: Set<string> | null = null;
    let queue = Promise.resolve();
    const fail = (error: Error): void => {
      this.stats.protocolErrors++;
      this.emit('error', error);
      socket.destroy();
    };
    const apply = async (frame: Frame): Promise<void> => {
      if (frame.type === FrameType.Hello) {
        peer = this.hello(frame.payload);
        return;
      }
      if (!peer) throw new FrameError('replication frame before HELLO');
      if (frame.type === FrameType.SyncBegin) syncing = new Set();
      else if (frame.type === FrameType.SyncEnd) {
        this.stats.fullSyncs++;
        await this.sink.synced(syncing ?? new Set(), peer);
        syncing = null;
      } else if (frame.type === FrameType.Upsert) await this.upsert(frame.payload, peer, syncing);
      else if (frame.type === FrameType.Delete) await this.remove(frame.payload, peer);
      else if (frame.type === FrameType.Handover) this.emit('handover', peer);
      socket.write(encodeFrame(FrameType.Ack, frame.sequence));
    };
    socket.on('data', (chunk) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        fail(error as Error);
        return;
      }
      for (const frame of frames) {
        this.stats.frames++;
        queue = queue.then(() => apply(frame)).catch((error: Error) => (error instanceof FrameError ? fail(error) : this.rejected(error)));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private rejected(error: Error): void {
    this.stats.rejected++;
    this.emit('error', error);
  }

  private hello(payload: Buffer): PeerIdentity {
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
    const identity = { node, epoch: d.epoch, priority: d.priority };
    this.emit('hello', identity);
    return identity;
  }

  private async upsert(payload: Buffer, peer: PeerIdentity, syncing: Set<string> | null): Promise<void> {
    const record = decodeRecord(payload);
    syncing?.add(record.callId);
    this.stats.upserts++;
    await this.sink.upsert(record, peer);
  }

  private async remove(payload: Buffer, peer: PeerIdentity): Promise<void> {
    let value;
    try {
      value = decode(payload);
    } catch (error) {
      throw new RecordFormatError(`malformed DELETE: ${(error as Error).message}`);
    }
    const d = isDict(value) ? (value as BDict) : null;
    if (!d || !isBytes(d.id) || typeof d.v !== 'number') throw new RecordFormatError('malformed DELETE');
    this.stats.deletes++;
    await this.sink.remove(d.id.toString(), d.v, peer);
  }
}
