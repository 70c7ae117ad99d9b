/**
 * Counters of the ng control socket, as one plain object that the metrics module reads
 * at scrape time (no copying, no registry dependency here).
 *
 * Invariants: every counter only grows (except `tcpConnections`, a gauge); error reasons
 * are bounded to `MAX_ERROR_REASONS` distinct keys (further ones count under `other`) so a
 * handler that puts call ids in its reasons cannot blow up metric cardinality.
 */

/** Upper bounds of the latency histogram buckets, in milliseconds. */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/** Distinct error reasons counted separately. */
export const MAX_ERROR_REASONS = 64;

export interface CommandCounters {
  /** Requests of this command answered (duplicates excluded). */
  count: number;
  /** Of those, answered with `result: error`. */
  errors: number;
  latencySumMs: number;
  latencyMaxMs: number;
  /** Non-cumulative counts per `LATENCY_BUCKETS_MS` bound, plus one last for +Inf. */
  latencyBuckets: number[];
}

export interface NgCounters {
  /** Messages received (datagrams, or frames cut from TCP streams). */
  received: number;
  /** Replies produced, duplicates included. */
  replied: number;
  /** Retransmissions answered from the reply cache (or joined to a run in progress). */
  duplicates: number;
  /** Messages given no reply at all (no cookie, or the connection failed). */
  dropped: number;
  /** Unknown keys, flags and values seen in requests. */
  warnings: number;
  /** Error replies and dropped messages, by reason. */
  errors: Record<string, number>;
  /** Per command (rtpengine's spelling), plus `invalid` for requests with no valid command. */
  commands: Record<string, CommandCounters>;
  /** Open TCP control connections. */
  tcpConnections: number;
  latencyBucketsMs: readonly number[];
}

export function createCounters(): NgCounters {
  return {
    received: 0,
    replied: 0,
    duplicates: 0,
    dropped: 0,
    warnings: 0,
    errors: Object.create(null) as Record<string, number>,
    commands: Object.create(null) as Record<string, CommandCounters>,
    tcpConnections: 0,
    latencyBucketsMs: LATENCY_BUCKETS_MS,
  };
}

export function countError(c: NgCounters, reason: string): void {
  const known = reason in c.errors;
  const key = known || Object.keys(c.errors).length < MAX_ERROR_REASONS ? reason : 'other';
  c.errors[key] = (c.errors[key] ?? 0) + 1;
}

export function observeCommand(c: NgCounters, command: string, ms: number, failed: boolean): void {
  const cmd = (c.commands[command] ??= {
    count: 0,
    errors: 0,
    latencySumMs: 0,
    latencyMaxMs: 0,
    latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
  });
  cmd.count++;
  if (failed) cmd.errors++;
  cmd.latencySumMs += ms;
  if (ms > cmd.latencyMaxMs) cmd.latencyMaxMs = ms;
  let i = 0;
  while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]) i++;
  cmd.latencyBuckets[i]++;
}
