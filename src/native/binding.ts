/**
 * The only module that loads the compiled addon. It types the raw binding, hands the addon our
 * error classes, and fails with an actionable message when the addon is missing. The raw
 * binding is private to `src/native/`.
 */
import path from 'node:path';
import { AddonLoadError, nativeErrorClasses } from '../errors';

export interface NativeEndpoint {
  address: string;
  port: number;
}

/**
 * One leg as the addon reads it: a flat array read by index (native/addon/engine_wrap.cc,
 * LegIndex), so a stream command creates and looks up no property names.
 */
export type NativeLeg = [
  address: string,
  port: number,
  rtcpMux: boolean,
  strictSource: boolean,
  asymmetric: boolean,
  learning: number,
  clockRate: number,
  remoteAddress: string | null,
  remotePort: number,
  remoteRtcpAddress: string | null,
  remoteRtcpPort: number,
  fields: number,
];

export interface NativeAllocation {
  id: number;
  legs: [NativeEndpoint & { rtcpMux: boolean }, NativeEndpoint & { rtcpMux: boolean }];
}

export interface NativeEvent {
  type: 'done' | 'closed' | 'exported' | 'learned' | 'idle';
  request: number;
  stream: number;
  side: number;
  kind: number;
  value: number;
  endpoint?: NativeEndpoint;
  payload?: Buffer;
}

export interface NativeEngineOptions {
  interfaces: string[];
  portMin: number;
  portMax: number;
  threads: number;
  backend: string;
  coalesceUs: number;
  idleTimeoutMs: number;
  learningWindowMs: number;
  maxSocketsPerWorker?: number;
  xdpDevices: string[];
  xdpFrames: number;
  xdpRingSize: number;
  xdpUdpChecksum: boolean;
}

export interface NativeEngineInfo {
  backend: string;
  backendNote: string;
  threads: number;
  portsInUse: number;
  portsTotal: number;
  streams: number;
}

export interface NativeEngine {
  createStream(request: number, a: NativeLeg, b: NativeLeg, standby: boolean): NativeAllocation;
  importStream(request: number, record: Buffer, standby: boolean): NativeAllocation;
  updateStream(request: number, id: number, a: NativeLeg, b: NativeLeg): void;
  closeStream(request: number, id: number): void;
  exportStream(request: number, id: number): void;
  /** Starts (standby false) or stops forwarding; returns how many `done` events will answer (one per worker for all). */
  activate(request: number, id: number | null, standby: boolean): number;
  readLegCounters(id: number, side: number, out: Float64Array): boolean;
  readEngineCounters(out: Float64Array): void;
  info(): NativeEngineInfo;
  close(): void;
}

export interface NativeBinding {
  Engine: new (options: NativeEngineOptions, onEvents: (events: NativeEvent[]) => void) => NativeEngine;
  setErrorClasses(classes: Record<string, new (message: string) => Error>): void;
  legCounterNames: string[];
  engineCounterNames: string[];
  ioUringBuilt: boolean;
  afXdpBuilt: boolean;
  /** Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) of `address` on `ifname`. */
  announceAddress(ifname: string, address: string, count: number): void;
}

/** Bit flags of `NativeLeg.fields` (must match native/channel/command.h). */
export const LegField = {
  remoteRtp: 1 << 0,
  remoteRtcp: 1 << 1,
  learning: 1 << 2,
  strict: 1 << 3,
  asymmetric: 1 << 4,
  rtcpMux: 1 << 5,
  clockRate: 1 << 6,
} as const;

let cached: NativeBinding | undefined;

function load(file: string): NativeBinding {
  const mod = { exports: {} as NativeBinding };
  process.dlopen(mod, file);
  return mod.exports;
}

/** The addon, loaded once per thread. `RTPHUB_ADDON` overrides the path (e.g. a sanitizer build). */
export function binding(): NativeBinding {
  if (cached) return cached;
  const file = process.env.RTPHUB_ADDON ?? path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'rtphub.node');
  const fallback = path.resolve(__dirname, '..', '..', 'build', 'Release', 'rtphub.node');
  let loaded: NativeBinding;
  try {
    loaded = load(file);
  } catch (first) {
    try {
      loaded = load(fallback);
    } catch (second) {
      throw new AddonLoadError(
        `cannot load the rtphub addon (${file}: ${(first as Error).message}; ${fallback}: ${(second as Error).message}). ` +
          'Build it with `npm run build` (needs g++, make and python3; liburing-dev for io_uring).',
      );
    }
  }
  loaded.setErrorClasses(nativeErrorClasses);
  cached = loaded;
  return loaded;
}
