/**
 * The replication I/O thread (see replication-io.ts): owns the TCP sockets of the replication
 * link, both directions, so that how fast a record reaches the peer and its acknowledgement comes
 * back does not depend on how busy either relay's main thread is.
 *
 * Inbound (this relay as the standby): every byte read is handed to the main thread, which
 * checks and applies the frames; this thread cuts the same bytes into frames only to acknowledge
 * them on receipt, cumulatively, one ACK per read. A HANDOVER is acknowledged only once the main
 * thread confirms it took the calls (the peer steps down on that acknowledgement), and nothing
 * after it before that. A stream that does not cut into frames is not acknowledged further; the
 * main thread finds the same fault and closes the connection.
 *
 * Outbound (this relay as the owner of calls): writes the frames the main thread encoded, in
 * order, and measures the replication lag itself: each record's write time on the main thread to
 * its acknowledgement read here.
 */
import net from 'node:net';
import { parentPort } from 'node:worker_threads';
import { encodeFrame, FrameDecoder, FrameType } from './frames';
import type { FromIo, ToIo } from './replication-io';
import { raiseThreadPriority } from './thread-priority';

const port = parentPort!;
const post = (m: FromIo, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
const chunkOf = (data: Uint8Array): Buffer => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

interface Inbound {
  socket: net.Socket;
  decoder: FrameDecoder;
  /** The newest frame read, and the newest that may be acknowledged (null: none yet). */
  lastRead: number | null;
  ackable: number | null;
  written: number | null;
  /** HANDOVER frames read but not yet confirmed by the main thread, oldest first. */
  held: number[];
  broken: boolean;
}

let server: net.Server | null = null;
let nextInbound = 1;
const inbound = new Map<number, Inbound>();

function listen(address: string, portNumber: number): void {
  const s = net.createServer(accept);
  server = s;
  s.once('error', (error) => post({ t: 'listen-failed', message: error.message }));
  s.listen(portNumber, address, () => {
    const bound = s.address() as net.AddressInfo;
    post({ t: 'listening', address: bound.address, port: bound.port });
  });
}

function accept(socket: net.Socket): void {
  const id = nextInbound++;
  socket.setNoDelay(true);
  const conn: Inbound = { socket, decoder: new FrameDecoder(), lastRead: null, ackable: null, written: null, held: [], broken: false };
  inbound.set(id, conn);
  post({ t: 'in-open', id });
  socket.on('data', (chunk: Buffer) => {
    // An exact copy, moved to the main thread (a read buffer may be a slice of a larger one).
    const copy = new Uint8Array(chunk.length);
    copy.set(chunk);
    post({ t: 'in-data', id, chunk: copy }, [copy.buffer]);
    if (conn.broken) return;
    try {
      for (const frame of conn.decoder.push(chunk)) {
        conn.lastRead = frame.sequence;
        if (frame.type === FrameType.Handover) conn.held.push(frame.sequence);
        else if (conn.held.length === 0) conn.ackable = frame.sequence;
      }
    } catch {
      conn.broken = true;
      return;
    }
    acknowledge(conn);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    inbound.delete(id);
    post({ t: 'in-close', id });
  });
}

function acknowledge(conn: Inbound): void {
  if (conn.ackable === null || conn.ackable === conn.written || conn.socket.destroyed) return;
  conn.written = conn.ackable;
  conn.socket.write(encodeFrame(FrameType.Ack, conn.ackable));
}

/** The main thread took the calls of the HANDOVER `sequence`: it and what followed may be acknowledged. */
function confirm(id: number, sequence: number): void {
  const conn = inbound.get(id);
  if (!conn) return;
  const at = conn.held.indexOf(sequence);
  if (at < 0) return;
  conn.held.splice(at, 1);
  conn.ackable = conn.held.length > 0 ? (conn.held[0] - 1) >>> 0 : conn.lastRead;
  if (!conn.broken) acknowledge(conn);
}

interface Outbound {
  generation: number;
  socket: net.Socket;
  connected: boolean;
  decoder: FrameDecoder;
  maxBuffered: number;
  overflowed: boolean;
  /** Write times (Unix ms) of the records not yet acknowledged, by sequence, oldest first. */
  pending: Map<number, number>;
}

let outbound: Outbound | null = null;
const CONNECT_TIMEOUT_MS = 1000;
const PENDING_MAX = 65536;

function connect(generation: number, host: string, portNumber: number, maxBuffered: number): void {
  destroyOutbound();
  const socket = net.connect(portNumber, host);
  socket.setNoDelay(true);
  socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy());
  const conn: Outbound = { generation, socket, connected: false, decoder: new FrameDecoder(), maxBuffered, overflowed: false, pending: new Map() };
  outbound = conn;
  socket.on('connect', () => {
    socket.setTimeout(0);
    conn.connected = true;
    post({ t: 'out-connected', generation });
  });
  socket.on('data', (chunk: Buffer) => {
    let sequence: number | null = null;
    try {
      for (const frame of conn.decoder.push(chunk)) if (frame.type === FrameType.Ack) sequence = frame.sequence;
    } catch {
      socket.destroy();
      return;
    }
    if (sequence !== null) acked(conn, sequence);
  });
  socket.on('drain', () => {
    if (!conn.overflowed) return;
    conn.overflowed = false;
    post({ t: 'out-drain', generation });
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (outbound === conn) outbound = null;
    post({ t: 'out-closed', generation, connected: conn.connected });
  });
}

function acked(conn: Outbound, sequence: number): void {
  const now = Date.now();
  const lags: number[] = [];
  for (const [seq, writtenAt] of conn.pending) {
    if (((sequence - seq) | 0) < 0) break;
    conn.pending.delete(seq);
    lags.push(now - writtenAt);
  }
  post({ t: 'out-acked', generation: conn.generation, sequence, lags });
}

function write(generation: number, data: Uint8Array, lags: number[]): void {
  const conn = outbound;
  if (!conn || conn.generation !== generation || conn.socket.destroyed) return;
  for (let i = 0; i + 1 < lags.length && conn.pending.size < PENDING_MAX; i += 2) conn.pending.set(lags[i], lags[i + 1]);
  conn.socket.write(chunkOf(data));
  if (!conn.overflowed && conn.socket.writableLength > conn.maxBuffered) {
    conn.overflowed = true;
    post({ t: 'out-overflow', generation });
  }
}

function destroyOutbound(): void {
  const conn = outbound;
  outbound = null;
  conn?.socket.destroy();
}

port.on('message', (m: ToIo) => {
  switch (m.t) {
    case 'listen':
      listen(m.address, m.port);
      break;
    case 'in-destroy':
      inbound.get(m.id)?.socket.destroy();
      break;
    case 'in-confirm':
      confirm(m.id, m.sequence);
      break;
    case 'out-connect':
      connect(m.generation, m.host, m.port, m.maxBuffered);
      break;
    case 'out-write':
      write(m.generation, m.data, m.lags);
      break;
    case 'out-destroy':
      if (outbound?.generation === m.generation) destroyOutbound();
      break;
    case 'close':
      destroyOutbound();
      for (const conn of inbound.values()) conn.socket.destroy();
      server?.close(() => post({ t: 'closed' }));
      if (!server) post({ t: 'closed' });
      server = null;
      break;
  }
});

post({ t: 'ready', scheduling: raiseThreadPriority(5) });
