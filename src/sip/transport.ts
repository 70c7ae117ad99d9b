/**
 * SIP transports of the front: one UDP socket and one TCP listener on `--listen-sip`, plus
 * the sockets requests leave by. Requests to a next hop go out of a UDP socket *connected* to
 * it (one per destination, a bounded pool), because only a connected socket hears the ICMP
 * port-unreachable that says the hop is gone: that is reported at once as a transport error
 * (seed 002: a transmit error fails over without waiting for a timeout). TCP requests reuse one
 * connection per destination; a refused or reset connection is a transport error too.
 * Responses go back the way the request came (RFC 3261 18.2.2): over its TCP connection, or by
 * UDP from the listening socket.
 *
 * Invariant: nothing here throws to the caller after `listen`; socket errors become
 * `onTransportError(destination)` or an `onEvent` report.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { StreamFramer } from './stream-framer';

export type Transport = 'udp' | 'tcp';

export interface Destination {
  transport: Transport;
  address: string;
  port: number;
}

/** Where a message came from; `connection` for TCP, so responses can go back on it. */
export interface Source extends Destination {
  connection?: net.Socket;
}

export interface SipTransportOptions {
  address: string;
  port: number;
  onMessage: (message: Buffer, source: Source) => void;
  /** A destination refused our packets or connection (ICMP unreachable, RST, connect error). */
  onTransportError: (destination: string) => void;
  onEvent?: (message: string, error?: unknown) => void;
  /** Most connected UDP sockets kept for next hops (oldest closed first). */
  maxNextHops?: number;
}

export function destinationKey(d: Destination): string {
  return `${d.transport}:${d.address}:${d.port}`;
}

const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

export class SipTransport {
  private readonly udp: dgram.Socket;
  private readonly tcp: net.Server;
  private readonly nextHops = new Map<string, NextHop>();
  private readonly outbound = new Map<string, net.Socket>();
  private readonly inbound = new Set<net.Socket>();
  private closed = false;
  private bound: { address: string; port: number } | null = null;

  constructor(private readonly options: SipTransportOptions) {
    const family = net.isIPv6(options.address) ? 'udp6' : 'udp4';
    this.udp = dgram.createSocket({ type: family, recvBufferSize: RECV_BUFFER_BYTES });
    this.udp.on('message', (msg, rinfo) => this.options.onMessage(msg, { transport: 'udp', address: rinfo.address, port: rinfo.port }));
    this.udp.on('error', (error) => this.options.onEvent?.('udp socket error', error));
    this.tcp = net.createServer((socket) => this.accept(socket));
    this.tcp.on('error', (error) => this.options.onEvent?.('tcp listener error', error));
  }

  async listen(): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.udp.once('error', reject);
      this.udp.bind(this.options.port, this.options.address, () => {
        this.udp.off('error', reject);
        resolve();
      });
    });
    const port = this.udp.address().port;
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(port, this.options.address, () => {
        this.tcp.off('error', reject);
        resolve();
      });
    });
    this.bound = { address: this.options.address, port };
    return this.bound;
  }

  get address(): { address: string; port: number } {
    if (!this.bound) throw new Error('SIP transport is not listening');
    return this.bound;
  }

  /** A response, or a request sent statelessly: back on the TCP connection it names, else by UDP. */
  send(to: Source, bytes: Buffer): void {
    if (this.closed) return;
    if (to.transport === 'tcp') {
      const socket = to.connection && !to.connection.destroyed ? to.connection : this.connect(to);
      socket.write(bytes);
      return;
    }
    this.udp.send(bytes, to.port, to.address, (error) => {
      if (error) this.options.onEvent?.(`udp send to ${to.address}:${to.port} failed`, error);
    });
  }

  /** A request to a next hop, where a transport error must be noticed at once. */
  sendRequest(to: Destination, bytes: Buffer): void {
    if (this.closed) return;
    if (to.transport === 'tcp') {
      this.send(to, bytes);
      return;
    }
    const socket = this.nextHop(to);
    if (!socket) {
      this.send(to, bytes);
      return;
    }
    socket.send(bytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.nextHops.values()) s.close();
    this.nextHops.clear();
    for (const s of [...this.outbound.values(), ...this.inbound]) s.destroy();
    this.outbound.clear();
    this.inbound.clear();
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
  }

  private nextHop(to: Destination): NextHop | null {
    const key = destinationKey(to);
    const existing = this.nextHops.get(key);
    if (existing) return existing;
    const max = this.options.maxNextHops ?? 256;
    if (this.nextHops.size >= max) {
      const [oldestKey, oldest] = this.nextHops.entries().next().value as [string, NextHop];
      this.nextHops.delete(oldestKey);
      oldest.close();
    }
    const hop = new NextHop(to, this.options.address, {
      onMessage: (msg, rinfo) => this.options.onMessage(msg, { transport: 'udp', address: rinfo.address, port: rinfo.port }),
      onRefused: () => this.options.onTransportError(key),
      onError: (error) => this.options.onEvent?.(`next hop ${key} socket error`, error),
    });
    this.nextHops.set(key, hop);
    return hop;
  }

  private connect(to: Destination): net.Socket {
    const key = destinationKey(to);
    const existing = this.outbound.get(key);
    if (existing && !existing.destroyed) return existing;
    const socket = net.connect({ host: to.address, port: to.port, localAddress: this.options.address });
    socket.setNoDelay(true);
    this.outbound.set(key, socket);
    this.read(socket, { transport: 'tcp', address: to.address, port: to.port, connection: socket });
    socket.on('error', () => this.options.onTransportError(key));
    socket.on('close', () => {
      if (this.outbound.get(key) === socket) this.outbound.delete(key);
    });
    return socket;
  }

  private accept(socket: net.Socket): void {
    if (this.closed || this.inbound.size >= 4096) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inbound.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.inbound.delete(socket));
    this.read(socket, { transport: 'tcp', address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, connection: socket });
  }

  private read(socket: net.Socket, source: Source): void {
    const framer = new StreamFramer();
    socket.on('data', (chunk: Buffer) => {
      const framed = framer.push(chunk);
      for (const message of framed.messages) this.options.onMessage(message, source);
      if (framed.pings > 0 && !socket.destroyed) socket.write('\r\n');
      if (framed.error) {
        this.options.onEvent?.(`tcp framing error from ${source.address}:${source.port}: ${framed.error}`);
        socket.destroy();
      }
    });
  }
}

/**
 * A UDP socket connected to one next hop. Datagrams sent before the connect completes wait for
 * it; ICMP errors the kernel reports on the connected socket become `onRefused`.
 */
class NextHop {
  private readonly socket: dgram.Socket;
  private connected = false;
  private queue: Buffer[] = [];

  constructor(
    to: Destination,
    localAddress: string,
    handlers: {
      onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo) => void;
      onRefused: () => void;
      onError: (error: Error) => void;
    },
  ) {
    this.socket = dgram.createSocket({ type: net.isIPv6(to.address) ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH') handlers.onRefused();
      else handlers.onError(error);
    });
    this.socket.on('message', handlers.onMessage);
    this.socket.bind(0, localAddress, () => {
      this.socket.connect(to.port, to.address, () => {
        this.connected = true;
        for (const bytes of this.queue) this.socket.send(bytes);
        this.queue = [];
      });
    });
  }

  send(bytes: Buffer): void {
    if (this.connected) this.socket.send(bytes);
    else if (this.queue.length < 64) this.queue.push(bytes);
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
