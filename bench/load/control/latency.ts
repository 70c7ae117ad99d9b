/**
 * Latency samples of one command over a measurement window, kept whole (a 10 s window
 * at tens of thousands of commands per second is a few MB) so percentiles are exact.
 * The store is bounded: past `limit` samples new ones are counted but not kept.
 */

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

const INITIAL_CAPACITY = 65_536;
const DEFAULT_LIMIT = 4_000_000;

export class LatencySamples {
  private values = new Float64Array(INITIAL_CAPACITY);
  private length = 0;
  private dropped = 0;

  constructor(private readonly limit = DEFAULT_LIMIT) {}

  add(ms: number): void {
    if (this.length === this.values.length) {
      if (this.length >= this.limit) {
        this.dropped++;
        return;
      }
      const grown = new Float64Array(Math.min(this.limit, this.values.length * 2));
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = ms;
  }

  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.length).sort();
    const at = (q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: this.length + this.dropped,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      p999Ms: at(0.999),
      maxMs: sorted.length === 0 ? NaN : sorted[sorted.length - 1],
      meanMs: sorted.length === 0 ? NaN : sum / sorted.length,
    };
  }
}
