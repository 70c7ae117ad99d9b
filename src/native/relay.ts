/**
 * The typed facade over the native engine. A Relay owns worker threads that forward RTP/RTCP
 * between the two legs of each Stream; JavaScript never sees a packet. Commands return promises
 * that settle when the owning worker has carried them out; errors are the typed errors of
 * `src/errors.ts`. Lifetimes never depend on GC: `Stream.close()` and `Relay.close()` are explicit
 * and idempotent, and closing the relay closes its streams first so every port is free again.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import os from 'node:os';
import { ClosedError, InvalidArgumentError, SystemError } from '../errors';
import { binding, LegField, NativeAllocation, NativeEngine, NativeEvent, NativeLeg } from './binding';
import type {
  BackendName,
  EngineCounters,
  Endpoint,
  LearningMode,
  LegCounters,
  LegInfo,
  LegOptions,
  LegSide,
  RelayEvent,
  RelayOptions,
  StreamOptions,
} from './types';

const learningCodes: Record<LearningMode, number> = { off: 0, immediate: 1, delayed: 2, heuristic: 3 };
const sides: LegSide[] = ['a', 'b'];

interface Pending {
  resolve(event: NativeEvent): void;
  reject(error: Error): void;
  remaining: number;
}

export interface RelayInfo {
  backend: BackendName;
  /** Why the preferred backend was not used, if it was not. */
  backendNote: string;
  threads: number;
  portsInUse: number;
  portsTotal: number;
  streams: number;
}

function checkEndpoint(value: Endpoint | null | undefined, what: string): void {
  if (value == null) return;
  if (typeof value.address !== 'string' || isIP(value.address) === 0 || !Number.isInteger(value.port) || value.port < 0 || value.port > 65535) {
    throw new InvalidArgumentError(`${what} must be {address, port} with an IP address and a port in 0..65535`);
  }
}

/** Converts (and validates) leg options into the native shape; `fields` marks what an update sets. */
function nativeLeg(options: Partial<LegOptions>, defaults: { address: string }, update: boolean): NativeLeg {
  checkEndpoint(options.remote, 'remote');
  checkEndpoint(options.remoteRtcp, 'remoteRtcp');
  if (options.learning !== undefined && !Object.hasOwn(learningCodes, options.learning)) {
    throw new InvalidArgumentError(`unknown learning mode '${String(options.learning)}'`);
  }
  const port = options.localPort;
  if (port !== undefined && (!Number.isInteger(port) || port % 2 !== 0 || port < 0 || port > 65534)) {
    throw new InvalidArgumentError('localPort must be an even port number below 65535');
  }
  if (options.localAddress !== undefined && isIP(options.localAddress) === 0) {
    throw new InvalidArgumentError(`localAddress must be an IP address, not '${options.localAddress}'`);
  }
  const rtcpMux = options.rtcpMux ?? false;
  const remoteRtcp =
    options.remoteRtcp !== undefined
      ? options.remoteRtcp
      : options.remote
        ? { address: options.remote.address, port: rtcpMux ? options.remote.port : options.remote.port + 1 }
        : options.remote;
  let fields = 0;
  if (options.remote !== undefined) fields |= LegField.remoteRtp;
  if (remoteRtcp !== undefined) fields |= LegField.remoteRtcp;
  if (options.learning !== undefined) fields |= LegField.learning;
  if (options.strictSource !== undefined) fields |= LegField.strict;
  if (options.asymmetric !== undefined) fields |= LegField.asymmetric;
  if (options.rtcpMux !== undefined) fields |= LegField.rtcpMux;
  if (options.clockRate !== undefined) {
    if (!Number.isInteger(options.clockRate) || options.clockRate < 0 || options.clockRate > 1_000_000) {
      throw new InvalidArgumentError('clockRate must be an integer number of Hz in 0..1000000');
    }
    fields |= LegField.clockRate;
  }
  const remote = options.remote ?? null;
  return [
    options.localAddress ?? defaults.address,
    options.localPort ?? 0,
    rtcpMux,
    options.strictSource ?? false,
    options.asymmetric ?? false,
    learningCodes[options.learning ?? 'delayed'],
    options.clockRate ?? 8000,
    remote ? remote.address : null,
    remote ? remote.port : 0,
    remoteRtcp ? remoteRtcp.address : null,
    remoteRtcp ? remoteRtcp.port : 0,
    update ? fields : 0xffffffff,
  ];
}

function toCounters(names: readonly string[], values: Float64Array): LegCounters {
  const out: Record<string, number> = {};
  names.forEach((name, i) => (out[name] = values[i]));
  return out;
}

export class Stream {
  /** Replaced (not mutated) when an update turns rtcp-mux on or off. */
  a: LegInfo;
  b: LegInfo;
  private closing?: Promise<void>;

  /** @internal */
  constructor(
    private readonly relay: Relay,
    readonly id: number,
    allocation: NativeAllocation,
  ) {
    const leg = (side: 0 | 1): LegInfo => {
      const l = allocation.legs[side];
      return { id: id * 2 + side, localAddress: l.address, localPort: l.port, rtcpPort: l.rtcpMux ? null : l.port + 1 };
    };
    this.a = leg(0);
    this.b = leg(1);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Changes what is given (endpoints, learning, strict source, rtcp-mux); the rest stays. */
  update(options: { a?: Partial<LegOptions>; b?: Partial<LegOptions> }): Promise<void> {
    if (this.closing) return Promise.reject(new ClosedError(`stream ${this.id} is closed`));
    return this.relay._update(this, options);
  }

  counters(): { a: LegCounters; b: LegCounters } {
    return { a: this.relay._legCounters(this.id, 0), b: this.relay._legCounters(this.id, 1) };
  }

  /** One leg's counters (half the work of `counters()` when one side is wanted). */
  legCounters(side: LegSide): LegCounters {
    return this.relay._legCounters(this.id, side === 'a' ? 0 : 1);
  }

  /** The stream's state as a versioned restoration record (see native/snapshot/record.cc). */
  export(): Promise<Buffer> {
    if (this.closing) return Promise.reject(new ClosedError(`stream ${this.id} is closed`));
    return this.relay._export(this.id);
  }

  /** Stops forwarding, closes the sockets and returns the ports to the pool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.relay._close(this);
    return this.closing;
  }

  /** @internal */
  _muxChanged(side: LegSide, rtcpMux: boolean): void {
    const leg = this[side];
    this[side] = { ...leg, rtcpPort: rtcpMux ? null : leg.localPort + 1 };
  }

  /** @internal */
  _markClosed(): void {
    this.closing ??= Promise.resolve();
  }
}

export interface RelayEvents {
  learned: [event: Extract<RelayEvent, { type: 'learned' }> & { stream: Stream }];
  idle: [event: Extract<RelayEvent, { type: 'idle' }> & { stream: Stream }];
}

export class Relay extends EventEmitter<RelayEvents> {
  static get legCounterNames(): readonly string[] {
    return binding().legCounterNames;
  }
  /** Whether this build has the AF_XDP backend (libxdp, libbpf and clang were there at build time). */
  static get afXdpBuilt(): boolean {
    return binding().afXdpBuilt;
  }

  static get engineCounterNames(): readonly string[] {
    return binding().engineCounterNames;
  }

  readonly backend: BackendName;
  readonly threads: number;
  private readonly engine: NativeEngine;
  private readonly defaultAddress: string;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, Stream>();
  private readonly legValues: Float64Array;
  private readonly engineValues: Float64Array;
  private nextRequest = 1;
  private closing?: Promise<void>;
  private engineClosed = false;

  private constructor(options: Required<RelayOptions>) {
    super();
    const native = binding();
    this.defaultAddress = options.interfaces[0];
    this.legValues = new Float64Array(native.legCounterNames.length);
    this.engineValues = new Float64Array(native.engineCounterNames.length);
    this.engine = new native.Engine(options, (events) => this.onEvents(events));
    const info = this.engine.info();
    this.backend = info.backend as BackendName;
    this.threads = info.threads;
  }

  static start(options: RelayOptions = {}): Relay {
    const full: Required<RelayOptions> = {
      interfaces: options.interfaces ?? ['127.0.0.1'],
      portMin: options.portMin ?? 30000,
      portMax: options.portMax ?? 40000,
      threads: options.threads ?? os.availableParallelism(),
      backend: options.backend ?? 'auto',
      coalesceUs: options.coalesceUs ?? 500,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      learningWindowMs: options.learningWindowMs ?? 3000,
      xdpDevices: options.xdpDevices ?? [],
      xdpFrames: options.xdpFrames ?? 2048,
      xdpRingSize: options.xdpRingSize ?? 1024,
      xdpUdpChecksum: options.xdpUdpChecksum ?? true,
    };
    if (full.interfaces.length === 0) throw new InvalidArgumentError('at least one interface address is needed');
    for (const key of ['portMin', 'portMax', 'threads', 'coalesceUs', 'idleTimeoutMs', 'learningWindowMs', 'xdpFrames', 'xdpRingSize'] as const) {
      if (!Number.isInteger(full[key]) || full[key] < 0) throw new InvalidArgumentError(`${key} must be a non-negative integer`);
    }
    if (full.backend === 'af_xdp' && full.xdpDevices.length === 0) throw new InvalidArgumentError('af_xdp needs at least one device (xdpDevices, --xdp-dev)');
    if (full.portMin > full.portMax || full.portMax > 65535) throw new InvalidArgumentError('port range must satisfy portMin <= portMax <= 65535');
    return new Relay(full);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  info(): RelayInfo {
    const info = this.engine.info();
    return { ...info, backend: info.backend as BackendName };
  }

  /** Engine-wide counters, summed over the workers, read without stopping them. */
  stats(): EngineCounters {
    if (this.engineClosed) throw new ClosedError('the relay is closed');
    this.engine.readEngineCounters(this.engineValues);
    return toCounters(Relay.engineCounterNames, this.engineValues);
  }

  /** Opens both legs' sockets (ports from the pool unless given) and starts forwarding. */
  async createStream(options: StreamOptions): Promise<Stream> {
    this.checkOpen();
    const request = this.request();
    const defaults = { address: this.defaultAddress };
    const allocation = this.engine.createStream(
      request,
      nativeLeg(options.a, defaults, false),
      nativeLeg(options.b, defaults, false),
      options.standby ?? false,
    );
    return this.started(request, allocation);
  }

  /** Recreates a stream from an exported record, on the record's own address and ports. */
  async importStream(record: Buffer, options: { standby?: boolean } = {}): Promise<Stream> {
    this.checkOpen();
    const request = this.request();
    const allocation = this.engine.importStream(request, record, options.standby ?? false);
    return this.started(request, allocation);
  }

  /** Starts forwarding on standby streams: one stream, or all of them. */
  async activate(stream?: Stream): Promise<void> {
    await this.setStandby(stream, false);
  }

  /** Stops forwarding (sockets stay bound) on one stream, or all of them: stepping down. */
  async deactivate(stream?: Stream): Promise<void> {
    await this.setStandby(stream, true);
  }

  private async setStandby(stream: Stream | undefined, standby: boolean): Promise<void> {
    this.checkOpen();
    if (stream?.closed) throw new ClosedError(`stream ${stream.id} is closed`);
    const request = this.request();
    const answers = this.engine.activate(request, stream ? stream.id : null, standby);
    await this.wait(request, answers);
  }

  /** Closes every stream (so their ports are free), then stops the workers. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.streams.values()].map((s) => s.close()));
    this.engine.close();
    this.engineClosed = true;
    for (const p of this.pending.values()) p.reject(new ClosedError('the relay is closed'));
    this.pending.clear();
    for (const s of this.streams.values()) s._markClosed();
    this.streams.clear();
  }

  private async started(request: number, allocation: NativeAllocation): Promise<Stream> {
    const stream = new Stream(this, allocation.id, allocation);
    this.streams.set(stream.id, stream);
    const done = await this.wait(request, 1);
    if (done.value !== 0) {
      await stream.close();
      throw new SystemError('the worker could not attach the stream sockets');
    }
    return stream;
  }

  /** @internal */
  async _update(stream: Stream, options: { a?: Partial<LegOptions>; b?: Partial<LegOptions> }): Promise<void> {
    const request = this.request();
    const defaults = { address: this.defaultAddress };
    this.engine.updateStream(request, stream.id, nativeLeg(options.a ?? {}, defaults, true), nativeLeg(options.b ?? {}, defaults, true));
    const done = await this.wait(request, 1);
    if (done.value !== 0) throw new ClosedError(`stream ${stream.id} is closed`);
    for (const side of sides) {
      const mux = options[side]?.rtcpMux;
      if (mux !== undefined) stream._muxChanged(side, mux);
    }
  }

  /** @internal */
  async _export(id: number): Promise<Buffer> {
    const request = this.request();
    this.engine.exportStream(request, id);
    const event = await this.wait(request, 1);
    if (!event.payload) throw new ClosedError(`stream ${id} is closed`);
    return event.payload;
  }

  /** @internal */
  async _close(stream: Stream): Promise<void> {
    if (this.engineClosed || !this.streams.has(stream.id)) return;
    const request = this.request();
    this.engine.closeStream(request, stream.id);
    await this.wait(request, 1);
    this.streams.delete(stream.id);
  }

  /** @internal */
  _legCounters(id: number, side: 0 | 1): LegCounters {
    if (!this.engineClosed && this.engine.readLegCounters(id, side, this.legValues)) {
      return toCounters(Relay.legCounterNames, this.legValues);
    }
    return toCounters(Relay.legCounterNames, new Float64Array(this.legValues.length));
  }

  private checkOpen(): void {
    if (this.closing) throw new ClosedError('the relay is closed');
  }

  /** A request id; streams may still be closed (and exported) while the relay is closing. */
  private request(): number {
    if (this.engineClosed) throw new ClosedError('the relay is closed');
    const id = this.nextRequest;
    this.nextRequest = this.nextRequest >= 0xfffffffe ? 1 : this.nextRequest + 1;
    return id;
  }

  private wait(request: number, answers: number): Promise<NativeEvent> {
    return new Promise((resolve, reject) => this.pending.set(request, { resolve, reject, remaining: answers }));
  }

  private onEvents(events: NativeEvent[]): void {
    for (const event of events) {
      if (event.type === 'learned' || event.type === 'idle') {
        this.announce(event);
        continue;
      }
      const pending = this.pending.get(event.request);
      if (!pending || --pending.remaining > 0) continue;
      this.pending.delete(event.request);
      pending.resolve(event);
    }
  }

  private announce(event: NativeEvent): void {
    const stream = this.streams.get(event.stream);
    if (!stream) return;
    const leg = sides[event.side];
    if (event.type === 'learned' && event.endpoint) {
      const kind = event.kind === 1 ? 'rtcp' : 'rtp';
      this.emit('learned', { type: 'learned', streamId: stream.id, stream, leg, kind, endpoint: event.endpoint });
    } else if (event.type === 'idle') {
      this.emit('idle', { type: 'idle', streamId: stream.id, stream, leg, idleMs: event.value });
    }
  }
}
