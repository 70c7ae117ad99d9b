/**
 * What the packet-rate harness needs from a relay under test: start a fresh process,
 * create one relayed call per generator call, report its PID (for /proc), stop. Each
 * trial starts its own relay process, so no state carries over between trials.
 */

/** The generator's two sockets of one call, on 127.0.0.1. */
export interface CallEndpoints {
  callerPort: number;
  calleePort: number;
}

/** The relay's two ports of one call: `a` faces the caller, `b` the callee. */
export interface RelayPorts {
  a: number;
  b: number;
}

export interface RunningRelay {
  readonly pid: number;
  /** Whether calls may be created in several batches (else one `createCalls` for all of them). */
  readonly batches: boolean;
  /** Creates the calls; packets to `a` go out of `b` to the callee and vice versa. */
  createCalls(calls: CallEndpoints[]): Promise<RelayPorts[]>;
  /** The relay's own counters, when it has any (kept in the JSON output only). */
  counters(): Promise<Record<string, number> | null>;
  stop(): Promise<void>;
}

export interface RelayUnderTest {
  /** Display name, e.g. `rtphub io_uring`. */
  readonly name: string;
  readonly family: 'rtphub' | 'naive' | 'rtpengine';
  /** Why this relay cannot run on this machine, or null when it can. */
  unavailableReason(): string | null;
  start(): Promise<RunningRelay>;
}

/** How every relay process is launched: pinned, guarded, bounded in time. */
export interface LaunchSettings {
  guard: string;
  relayCpu: number;
  nice: number;
  maxSeconds: number;
  portMin: number;
  portMax: number;
  /** Namespace mode: the relay's media address and the generator's caller/callee addresses (default 127.0.0.1). */
  mediaAddress?: string;
  callerAddress?: string;
  calleeAddress?: string;
}
