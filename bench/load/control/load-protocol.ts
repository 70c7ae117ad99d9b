/**
 * What the harness and the load generator (a child process, control/generator.ts) say to
 * each other: the settings go down as command-line flags, the result comes back as one
 * JSON line on stdout. Shared here so both sides agree on the fields.
 */
import type { ClientKind } from './load-client';
import type { LatencySummary } from './latency';
import type { CommandName } from './requests';

export interface LoadSettings {
  /** The relay's ng UDP port on 127.0.0.1. */
  port: number;
  /** The relay's PID, for its CPU time at the window edges. */
  relayPid: number;
  /** Calls set up (offer + answer) before the measurement, and left alive. */
  live: number;
  /** Concurrent offer+answer calls during setup. */
  setupConcurrency: number;
  /** Cycles in flight during warm-up and window: each runs offer → answer → delete in turn. */
  concurrency: number;
  warmupMs: number;
  windowMs: number;
  client: ClientKind;
  timeoutMs: number;
  attempts: number;
}

export interface CommandResult extends LatencySummary {
  errors: number;
  timeouts: number;
}

export interface LoadResult {
  setupMs: number;
  /** Offer+answer pairs per second during setup (not the measured figure). */
  setupPairsPerS: number;
  windowS: number;
  cycles: number;
  cyclesPerS: number;
  /** Cycles that failed in the window (an error reply or no reply to any of their commands). */
  failedCycles: number;
  commands: Record<CommandName, CommandResult>;
  /** First error replies seen, with counts. */
  errorSamples: Record<string, number>;
  retransmissions: number;
  /** Relay utime+stime over the window as a share of one core (100 = one core), or null. */
  relayCpuPct: number | null;
  /** The same from the threads' schedstat (exact run time), or null. */
  relayRunPct: number | null;
  /** The relay's threads busy during the window, busiest first (100 = one core). */
  relayThreads: Array<{ tid: number; name: string; pct: number }>;
  /** The generator's own CPU over the window (100 = one core). */
  generatorCpuPct: number;
  /** All CPUs' busy time minus relay and generator over the window (100 = one core), or null. */
  otherCpuPct: number | null;
  /** Window edges on CLOCK_MONOTONIC in microseconds, to cut a CPU profile to the window. */
  windowStartUs: number;
  windowEndUs: number;
}

const FLAGS: ReadonlyArray<keyof LoadSettings> = [
  'port', 'relayPid', 'live', 'setupConcurrency', 'concurrency', 'warmupMs', 'windowMs', 'client', 'timeoutMs', 'attempts',
];

export function settingsToArgs(s: LoadSettings): string[] {
  return FLAGS.flatMap((key) => [`--${key}`, String(s[key])]);
}

export function settingsFromArgs(argv: string[]): LoadSettings {
  const value = (key: keyof LoadSettings): string => {
    const i = argv.indexOf(`--${key}`);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`--${key} is required`);
    return argv[i + 1];
  };
  const count = (key: keyof LoadSettings): number => {
    const n = Number(value(key));
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${key}: expected a whole number`);
    return n;
  };
  const client = value('client');
  if (client !== 'template' && client !== 'project') throw new Error('--client: template or project');
  return {
    port: count('port'),
    relayPid: count('relayPid'),
    live: count('live'),
    setupConcurrency: Math.max(1, count('setupConcurrency')),
    concurrency: Math.max(1, count('concurrency')),
    warmupMs: count('warmupMs'),
    windowMs: Math.max(1, count('windowMs')),
    client,
    timeoutMs: Math.max(1, count('timeoutMs')),
    attempts: Math.max(1, count('attempts')),
  };
}

export function toLoadResult(message: Record<string, unknown>): LoadResult {
  if (typeof message.cyclesPerS !== 'number' || typeof message.commands !== 'object') {
    throw new Error(`generator result malformed: ${JSON.stringify(message).slice(0, 200)}`);
  }
  return message as unknown as LoadResult;
}
