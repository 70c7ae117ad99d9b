/**
 * Cache of replies by request cookie, so that a controller's retransmission never runs a
 * command twice (an `offer` run twice would allocate ports twice).
 *
 * Invariants:
 * - A key whose reply is known gets that reply, without running anything, for `ttlMs`
 *   after the reply was made (rtpengine keeps replies for 30–60 s).
 * - A key whose first request is still running gets the same promise: the work runs once.
 * - If the work rejects, the key is forgotten, so a retransmission runs it again.
 * - At most `maxEntries` keys are held; past that the oldest are dropped first. Entries
 *   are kept in a Map in expiry order (same TTL for all, re-inserted when completed), so
 *   expiry and eviction are both "drop from the front".
 */

export interface ReplyCacheOptions {
  /** How long a reply is kept after it was made, in ms (default 60 000). */
  ttlMs?: number;
  /** Most keys held (default 100 000). */
  maxEntries?: number;
  /** Clock in ms, for tests (default `Date.now`). */
  now?: () => number;
}

/** What `run` resolves to: the reply, and whether it came from an earlier run. */
export interface CachedResult<T> {
  value: T;
  duplicate: boolean;
}

interface Entry<T> {
  expires: number;
  promise?: Promise<T>;
}

export class ReplyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: ReplyCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.maxEntries = Math.max(1, options.maxEntries ?? 100_000);
    this.now = options.now ?? Date.now;
  }

  /** Number of keys held (finished or running). */
  get size(): number {
    return this.entries.size;
  }

  /** The reply for `key`: from the cache, from the run in progress, or from running `work`. */
  async run(key: string, work: () => Promise<T>): Promise<CachedResult<T>> {
    const now = this.now();
    this.expire(now);
    const hit = this.entries.get(key);
    if (hit?.promise) return { value: await hit.promise, duplicate: true };
    // the entry is in the map before `work` starts, even if `work` settles synchronously
    const entry: Entry<T> = { expires: now + this.ttlMs };
    this.entries.set(key, entry);
    this.evict();
    entry.promise = this.start(key, entry, work);
    return { value: await entry.promise, duplicate: false };
  }

  /** Runs `work` and, once it settles, either refreshes the entry or forgets it. */
  private async start(key: string, entry: Entry<T>, work: () => Promise<T>): Promise<T> {
    try {
      const value = await work();
      this.completed(key, entry);
      return value;
    } catch (e) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw e;
    }
  }

  private completed(key: string, entry: Entry<T>): void {
    // evicted or cleared meanwhile: nothing to refresh
    if (this.entries.get(key) !== entry) return;
    // re-insert at the back: the TTL counts from when the reply was made
    this.entries.delete(key);
    entry.expires = this.now() + this.ttlMs;
    this.entries.set(key, entry);
  }

  private expire(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expires > now) return;
      this.entries.delete(key);
    }
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) return;
      this.entries.delete(key);
    }
  }

  /** Drops everything (running work still completes for its first caller). */
  clear(): void {
    this.entries.clear();
  }
}
