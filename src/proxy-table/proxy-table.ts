/**
 * The proxy priority table (seed 000, claims 33–37): proxies grouped in levels by priority
 * (1 first), a designated pointer per level. A new call asks `pick`: the best level that has a
 * proxy in service gives the proxy at its pointer (skipping those out of service or already
 * tried for this call), and the pointer moves to the next proxy of the level, so answered
 * calls spread round-robin. A proxy that does not answer in time, or whose transport fails,
 * is taken out of service (`failed`); the caller then picks again, which walks the rest of
 * the level and then the next level. A proxy out of service returns only after `returnAfter`
 * health probes in a row were answered, so the table goes back to the best level without
 * flapping. Only when no proxy at all is in service are failed ones tried again, oldest failure
 * first, as a last resort.
 *
 * The table is pure state: no sockets, no timers (see ProxyProber), so it is tested alone.
 */
import type { ProxySpec } from './proxy-spec';

export type ProxyState = 'up' | 'down';
export type ProxyFailure = 'timeout' | 'transport';

export interface ProxyCounters {
  attempts: number;
  successes: number;
  timeouts: number;
  transportErrors: number;
  probes: number;
  probeFailures: number;
}

export class Proxy {
  state: ProxyState = 'up';
  /** Probes answered in a row while down. */
  probeStreak = 0;
  lastFailure: ProxyFailure | null = null;
  /** When the state last changed (Unix ms). */
  since = Date.now();
  readonly counters: ProxyCounters = { attempts: 0, successes: 0, timeouts: 0, transportErrors: 0, probes: 0, probeFailures: 0 };

  constructor(readonly spec: ProxySpec) {}

  get uri(): string {
    return this.spec.uri;
  }
}

export interface ProxyTableOptions {
  /** Probes answered in a row before a failed proxy is back in service. */
  returnAfter: number;
}

export interface ProxyTableEvents {
  state: (proxy: Proxy, previous: ProxyState) => void;
}

export class ProxyTable {
  readonly proxies: Proxy[];
  /** Levels in priority order, each with its proxies in configuration order. */
  readonly levels: Array<{ priority: number; proxies: Proxy[]; pointer: number }>;
  private listener: ProxyTableEvents['state'] | null = null;

  constructor(
    specs: readonly ProxySpec[],
    private readonly options: ProxyTableOptions,
  ) {
    this.proxies = specs.map((s) => new Proxy(s));
    const priorities = [...new Set(specs.map((s) => s.priority))].sort((a, b) => a - b);
    this.levels = priorities.map((priority) => ({ priority, proxies: this.proxies.filter((p) => p.spec.priority === priority), pointer: 0 }));
  }

  onState(listener: ProxyTableEvents['state']): void {
    this.listener = listener;
  }

  /**
   * The proxy to contact for a call, `tried` being those this call already tried: the first in
   * service from the pointer of the best level that has one. Null when none is left.
   */
  pick(tried: ReadonlySet<Proxy> = new Set()): Proxy | null {
    for (const level of this.levels) {
      const n = level.proxies.length;
      for (let i = 0; i < n; i++) {
        const index = (level.pointer + i) % n;
        const proxy = level.proxies[index];
        if (proxy.state !== 'up' || tried.has(proxy)) continue;
        level.pointer = (index + 1) % n;
        proxy.counters.attempts++;
        return proxy;
      }
    }
    return this.lastResort(tried);
  }

  /**
   * With no proxy in service at all, the one that failed longest ago (and that this call has not
   * tried): a blip that took every proxy out must not refuse calls until the probes bring one
   * back. While any proxy is in service this never applies.
   */
  private lastResort(tried: ReadonlySet<Proxy>): Proxy | null {
    if (this.proxies.some((p) => p.state === 'up')) return null;
    let oldest: Proxy | null = null;
    for (const proxy of this.proxies) {
      if (tried.has(proxy)) continue;
      if (!oldest || proxy.since < oldest.since) oldest = proxy;
    }
    if (oldest) oldest.counters.attempts++;
    return oldest;
  }

  /** Whether `pick(tried)` would find a proxy, without picking it. */
  hasCandidate(tried: ReadonlySet<Proxy>): boolean {
    const up = this.proxies.some((p) => p.state === 'up');
    return this.proxies.some((p) => !tried.has(p) && (p.state === 'up' || !up));
  }

  /** The proxy answered (any response) before the timeout: the call is attached to it. */
  answered(proxy: Proxy): void {
    proxy.counters.successes++;
  }

  /** No answer in time, or a transport error: out of service until the probes see it again. */
  failed(proxy: Proxy, reason: ProxyFailure): void {
    if (reason === 'timeout') proxy.counters.timeouts++;
    else proxy.counters.transportErrors++;
    proxy.lastFailure = reason;
    this.setState(proxy, 'down');
  }

  /** A health probe's outcome. */
  probed(proxy: Proxy, answered: boolean): void {
    proxy.counters.probes++;
    if (!answered) {
      proxy.counters.probeFailures++;
      proxy.probeStreak = 0;
      if (proxy.state === 'up') {
        proxy.lastFailure = 'timeout';
        this.setState(proxy, 'down');
      }
      return;
    }
    if (proxy.state === 'up') return;
    proxy.probeStreak++;
    if (proxy.probeStreak >= this.options.returnAfter) this.setState(proxy, 'up');
  }

  /** Priority of the level new calls go to now, or null when no proxy is in service. */
  activeLevel(): number | null {
    return this.levels.find((l) => l.proxies.some((p) => p.state === 'up'))?.priority ?? null;
  }

  private setState(proxy: Proxy, state: ProxyState): void {
    proxy.probeStreak = 0;
    if (proxy.state === state) return;
    const previous = proxy.state;
    proxy.state = state;
    proxy.since = Date.now();
    this.listener?.(proxy, previous);
  }
}
