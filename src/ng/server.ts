/**
 * `NgServer`: the ng control socket. It receives `<cookie> <dictionary>` messages over
 * UDP (`--listen-ng`, default 127.0.0.1:22222) and optionally TCP (`--listen-tcp-ng`),
 * answers `ping` itself, and hands every other valid request to the injected handler.
 *
 * Invariants:
 * - Every message with a cookie gets exactly one reply per arrival; a retransmission (same
 *   source address and cookie within the cache TTL) gets the first reply again and never
 *   reaches the handler twice.
 * - Nothing thrown by parsing, the handler or a socket escapes: it becomes an error reply
 *   (rtpengine's wording where it has one), a counter and an `onEvent` report.
 * - TCP replies on one connection go out in request order, even when handlers finish
 *   out of order. `close()` is idempotent and drops replies still being computed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { BencodeError } from './bencode';
import { NgCounters, countError, createCounters, observeCommand } from './counters';
import { NgRequestError } from './errors';
import { NgFormat, NgReplyDict, ParsedMessage, encodeReply, errorReply, parseMessage } from './message';
import { ListenAddress, parseListenAddress } from './listen-address';
import { ReplyCache, ReplyCacheOptions } from './reply-cache';
import { NgRequest, missingField } from './request';
import { TcpFramer } from './tcp-framing';

export type NgTransport = 'udp' | 'tcp';

/** Where a request came from, for the handler. */
export interface NgContext {
  source: { address: string; port: number };
  transport: NgTransport;
  cookie: string;
}

/** Runs one request. Throw `NgRequestError` (or return `result: error`) to refuse it. */
export type NgHandler = (req: NgRequest, ctx: NgContext) => Promise<NgReplyDict>;

/** Something worth a log line; the server itself does not log. */
export interface NgServerEvent {
  level: 'warn' | 'error';
  message: string;
  source?: { address: string; port: number };
  error?: unknown;
}

export interface NgServerOptions {
  handler: NgHandler;
  /** UDP listen address; `null` for none. Default `127.0.0.1:22222`. */
  listenNg?: string | number | ListenAddress | null;
  /** TCP listen address; default none. */
  listenTcpNg?: string | number | ListenAddress | null;
  replyCache?: ReplyCacheOptions;
  /** Largest message accepted on a TCP stream (default 256 KiB). */
  maxTcpMessageBytes?: number;
  /** Requests in progress per TCP connection before reading pauses (default 64). */
  maxTcpPipeline?: number;
  onEvent?: (event: NgServerEvent) => void;
}

/** `error-reason` when the handler throws something other than `NgRequestError`. */
export const INTERNAL_ERROR = 'Internal error';

export class NgServer {
  /** Live counters (see `counters.ts`); read them, do not write them. */
  readonly counters: NgCounters = createCounters();
  private readonly cache: ReplyCache<Buffer>;
  private readonly handler: NgHandler;
  private readonly options: NgServerOptions;
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly connections = new Set<net.Socket>();
  private closing?: Promise<void>;

  constructor(options: NgServerOptions) {
    this.options = options;
    this.handler = options.handler;
    this.cache = new ReplyCache<Buffer>(options.replyCache);
  }

  /** Binds the configured sockets. */
  async listen(): Promise<void> {
    if (this.closing) throw new Error('NgServer is closed');
    const udpAt = this.options.listenNg === undefined ? '127.0.0.1:22222' : this.options.listenNg;
    if (udpAt !== null) this.udp = await this.bindUdp(parseListenAddress(udpAt));
    const tcpAt = this.options.listenTcpNg;
    if (tcpAt !== undefined && tcpAt !== null) this.tcp = await this.bindTcp(parseListenAddress(tcpAt));
  }

  /** The bound addresses (ports resolved when 0 was asked for). */
  addresses(): { udp?: ListenAddress; tcp?: ListenAddress } {
    const udp = this.udp?.address();
    const tcp = this.tcp?.address();
    return {
      udp: udp ? { address: udp.address, port: udp.port } : undefined,
      tcp: tcp && typeof tcp === 'object' ? { address: tcp.address, port: tcp.port } : undefined,
    };
  }

  /**
   * Handles one complete message from any transport; resolves to the reply to send, or
   * `undefined` when no reply must be sent. Never rejects.
   */
  async handleMessage(message: Buffer, source: NgContext['source'], transport: NgTransport): Promise<Buffer | undefined> {
    const started = performance.now();
    this.counters.received++;
    try {
      const parsed = parseMessage(message);
      if (parsed.kind === 'no-cookie') return this.drop('No cookie in message', source);
      const key = `${source.address} ${parsed.cookie}`;
      const ctx: NgContext = { source, transport, cookie: parsed.cookie };
      const { value, duplicate } = await this.cache.run(key, () => this.reply(parsed, ctx, started));
      if (duplicate) this.counters.duplicates++;
      this.counters.replied++;
      return value;
    } catch (error) {
      this.report({ level: 'error', message: 'ng message handling failed', source, error });
      return this.drop(INTERNAL_ERROR, source);
    }
  }

  private drop(reason: string, source: NgContext['source']): undefined {
    this.counters.dropped++;
    countError(this.counters, reason);
    this.report({ level: 'warn', message: `ng message dropped: ${reason}`, source });
    return undefined;
  }

  /** Builds and encodes the reply to a first (non-duplicate) message. */
  private async reply(parsed: Exclude<ParsedMessage, { kind: 'no-cookie' }>, ctx: NgContext, started: number): Promise<Buffer> {
    let dict: NgReplyDict;
    let command: string;
    if (parsed.kind === 'invalid') {
      dict = errorReply(parsed.reason);
      command = parsed.command ?? 'invalid';
      const detail = parsed.detail ? ` (${parsed.detail})` : '';
      this.report({ level: 'warn', message: `ng protocol error: ${parsed.reason}${detail}`, source: ctx.source });
    } else {
      dict = await this.dispatch(parsed.request, ctx);
      command = parsed.request.command;
    }
    const bytes = this.encode(ctx.cookie, dict, parsed.format);
    const failed = dict.result === 'error';
    if (failed) countError(this.counters, String(dict['error-reason'] ?? 'unknown'));
    observeCommand(this.counters, command, performance.now() - started, failed);
    return bytes;
  }

  private async dispatch(req: NgRequest, ctx: NgContext): Promise<NgReplyDict> {
    if (req.warnings.length) {
      this.counters.warnings += req.warnings.length;
      this.report({ level: 'warn', message: `ng ${req.command}: ${req.warnings.join('; ')}`, source: ctx.source });
    }
    const missing = missingField(req);
    if (missing) return errorReply(missing);
    if (req.command === 'ping') return { result: 'pong' };
    try {
      return checkedReply(await this.handler(req, ctx));
    } catch (error) {
      if (error instanceof NgRequestError) return errorReply(error.reason);
      this.report({ level: 'error', message: `ng ${req.command} handler failed`, source: ctx.source, error });
      return errorReply(INTERNAL_ERROR);
    }
  }

  private encode(cookie: string, dict: NgReplyDict, format: NgFormat): Buffer {
    try {
      return encodeReply(cookie, dict, format);
    } catch (error) {
      if (!(error instanceof BencodeError)) throw error;
      this.report({ level: 'error', message: 'ng reply could not be encoded', error });
      return encodeReply(cookie, errorReply('Failed to encode reply'), format);
    }
  }

  private report(event: NgServerEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // a failing logger must not take the control socket down
    }
  }

  private bindUdp(at: ListenAddress): Promise<dgram.Socket> {
    const socket = dgram.createSocket(net.isIPv6(at.address) ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => this.onDatagram(socket, msg, rinfo));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(at.port, at.address, () => {
        socket.off('error', reject);
        socket.on('error', (error) => this.report({ level: 'error', message: 'ng UDP socket error', error }));
        resolve(socket);
      });
    });
  }

  private onDatagram(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const source = { address: rinfo.address, port: rinfo.port };
    void this.handleMessage(msg, source, 'udp').then((reply) => {
      if (!reply || this.closing) return;
      socket.send(reply, rinfo.port, rinfo.address, (error) => {
        if (!error) return;
        countError(this.counters, 'Reply could not be sent');
        this.report({ level: 'error', message: 'ng UDP reply could not be sent', source, error });
      });
    });
  }

  private bindTcp(at: ListenAddress): Promise<net.Server> {
    const server = net.createServer((socket) => this.onConnection(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.address, () => {
        server.off('error', reject);
        server.on('error', (error) => this.report({ level: 'error', message: 'ng TCP server error', error }));
        resolve(server);
      });
    });
  }

  private onConnection(socket: net.Socket): void {
    if (this.closing) return void socket.destroy();
    this.connections.add(socket);
    this.counters.tcpConnections++;
    socket.on('close', () => {
      if (this.connections.delete(socket)) this.counters.tcpConnections--;
    });
    socket.on('error', (error) => this.report({ level: 'warn', message: 'ng TCP connection error', error }));
    new TcpSession(this, socket, {
      maxMessageBytes: this.options.maxTcpMessageBytes ?? 256 * 1024,
      maxPipeline: this.options.maxTcpPipeline ?? 64,
    });
  }

  /** Counts and reports a TCP stream closed for bad framing (`replied`: an error reply went out). */
  streamFailed(reason: string, source: NgContext['source'], replied: boolean): void {
    this.counters.received++;
    if (!replied) return void this.drop(reason, source);
    this.counters.replied++;
    countError(this.counters, reason);
    this.report({ level: 'warn', message: `ng TCP stream closed: ${reason}`, source });
  }

  /** Stops listening, closes every connection; in-flight replies are dropped. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
    this.cache.clear();
  }
}

/** One TCP control connection: frames in, replies out in request order. */
class TcpSession {
  private readonly framer: TcpFramer;
  private readonly source: NgContext['source'];
  private writes: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failed = false;

  constructor(
    private readonly server: NgServer,
    private readonly socket: net.Socket,
    private readonly limits: { maxMessageBytes: number; maxPipeline: number },
  ) {
    this.framer = new TcpFramer(limits.maxMessageBytes);
    this.source = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    socket.on('data', (chunk) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    const { messages, error } = this.framer.push(chunk);
    for (const message of messages) this.submit(message);
    if (!error) return;
    this.failed = true;
    this.socket.pause();
    const replied = error.cookie !== undefined;
    this.server.streamFailed(error.reason, this.source, replied);
    if (error.cookie !== undefined) this.queue(Promise.resolve(encodeReply(error.cookie, errorReply(error.reason))));
    this.writes = this.writes.then(() => void this.socket.end());
  }

  private submit(message: Buffer): void {
    // copy: the frame is a view into a buffer the framer may keep for the next message
    const reply = this.server.handleMessage(Buffer.from(message), this.source, 'tcp');
    this.inFlight++;
    if (this.inFlight >= this.limits.maxPipeline) this.socket.pause();
    void reply.finally(() => {
      this.inFlight--;
      if (this.inFlight < this.limits.maxPipeline && !this.failed && !this.socket.destroyed) this.socket.resume();
    });
    this.queue(reply);
  }

  private queue(reply: Promise<Buffer | undefined>): void {
    this.writes = this.writes.then(async () => {
      const bytes = await reply;
      if (bytes && this.socket.writable) this.socket.write(bytes);
    });
  }
}

/** A handler's reply must at least be a dictionary with a string `result`. */
function checkedReply(reply: unknown): NgReplyDict {
  if (typeof reply === 'object' && reply !== null && typeof (reply as NgReplyDict).result === 'string') {
    return reply as NgReplyDict;
  }
  throw new Error('handler returned a reply without a string "result"');
}
