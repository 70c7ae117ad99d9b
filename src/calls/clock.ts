/**
 * Clocks of the call model. The data plane stamps packets with CLOCK_MONOTONIC (coarse) in ms;
 * process.hrtime reads the same clock, so the two compare directly. Replies speak Unix time.
 */

/** CLOCK_MONOTONIC in milliseconds (the data plane's `last_packet_ms` clock). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Unix time in seconds (fractional). */
export function unixSeconds(): number {
  return Date.now() / 1000;
}

/** Converts a data-plane monotonic timestamp (ms) to Unix seconds. */
export function monotonicToUnix(ms: number): number {
  return Math.floor(unixSeconds() - (monotonicMs() - ms) / 1000);
}
