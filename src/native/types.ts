/**
 * Public types of the data-plane facade. Everything above `src/native/` talks to the
 * C++ engine through these shapes only; the raw binding never leaves `src/native/`.
 */

/** How a leg learns (latches onto) the remote endpoint it sends to, as in rtpengine. */
export type LearningMode = 'off' | 'immediate' | 'delayed' | 'heuristic';

/**
 * Which packet loop the workers run. `auto` picks io_uring when built and usable; `af_xdp` (kernel
 * bypass, no socket per port, one worker) is only ever chosen explicitly.
 */
export type BackendName = 'io_uring' | 'epoll' | 'af_xdp';

export interface Endpoint {
  address: string;
  port: number;
}

export interface LegOptions {
  /** Local address to bind; must be one of the relay's interface addresses (default: the first). */
  localAddress?: string;
  /** One socket for RTP and RTCP (RFC 5761) instead of an RTCP socket on port+1. */
  rtcpMux?: boolean;
  /** The signalled RTP endpoint of this leg's party: where packets for this leg are sent. */
  remote?: Endpoint | null;
  /** The signalled RTCP endpoint (default: remote port + 1, or the RTP endpoint with rtcp-mux). */
  remoteRtcp?: Endpoint | null;
  /** Endpoint learning (default `delayed`, like rtpengine). */
  learning?: LearningMode;
  /** Once an endpoint is learned, drop (and count) packets from any other source. */
  strictSource?: boolean;
  /** Never learn: always send to the signalled endpoint, accept packets from anywhere. */
  asymmetric?: boolean;
  /** Bind exactly this (even) RTP port instead of taking one from the pool. */
  localPort?: number;
  /**
   * RTP clock rate (Hz) of what this leg's party sends, for the interarrival jitter counter
   * (default 8000; 0: no jitter).
   */
  clockRate?: number;
}

export interface StreamOptions {
  a: LegOptions;
  b: LegOptions;
  /** Bind the sockets but do not forward until `Relay.activate()` (hot standby). */
  standby?: boolean;
}

export interface LegInfo {
  /** Engine-wide leg id (used in events). */
  readonly id: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The RTCP port (RTP port + 1), or null with rtcp-mux. */
  readonly rtcpPort: number | null;
}

export type LegSide = 'a' | 'b';

/** Per-leg counters; the names come from the C++ counter list (see `Relay.legCounterNames`). */
export type LegCounters = Readonly<Record<string, number>>;

/** Engine-wide counters, summed over workers; names from the C++ list (`Relay.engineCounterNames`). */
export type EngineCounters = Readonly<Record<string, number>>;

export interface RelayOptions {
  /** Local addresses media sockets may bind (default `['127.0.0.1']`). */
  interfaces?: string[];
  /** Media port range, inclusive (default 30000..40000). RTP ports are even, RTCP = RTP + 1. */
  portMin?: number;
  portMax?: number;
  /** Worker threads (default: number of CPUs). */
  threads?: number;
  /** Packet loop; default `auto` (io_uring when available, else epoll). */
  backend?: BackendName | 'auto';
  /** Coalescing window in microseconds: how long a worker gathers packets after a wake-up (0 = off; default 500). */
  coalesceUs?: number;
  /** Emit an `idle` event when a leg has received nothing for this long (ms; 0 = never). */
  idleTimeoutMs?: number;
  /** Delayed/heuristic learning window in ms (default 3000, like rtpengine). */
  learningWindowMs?: number;
  /** af_xdp: the network devices to take the relay's packets from (required for af_xdp). */
  xdpDevices?: string[];
  /** af_xdp: UMEM frames (2 KiB each, locked memory; default 2048 = 4 MiB). */
  xdpFrames?: number;
  /** af_xdp: entries of each rx, tx, fill and completion ring (power of two; default 1024). */
  xdpRingSize?: number;
  /** af_xdp: compute the UDP checksum of forwarded packets (default true; false sends 0, IPv4 only). */
  xdpUdpChecksum?: boolean;
}

export interface LearnedEvent {
  type: 'learned';
  streamId: number;
  leg: LegSide;
  kind: 'rtp' | 'rtcp';
  endpoint: Endpoint;
}

export interface IdleEvent {
  type: 'idle';
  streamId: number;
  leg: LegSide;
  /** Milliseconds since the last packet on this leg (or since creation). */
  idleMs: number;
}

export type RelayEvent = LearnedEvent | IdleEvent;
