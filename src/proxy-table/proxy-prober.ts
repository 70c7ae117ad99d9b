/**
 * Health probes of the proxy table: every interval, one probe per proxy (the SIP front sends
 * OPTIONS; any response counts as an answer), never two at once for the same proxy. A failed
 * proxy comes back after enough answered probes in a row (ProxyTable.probed); a proxy in
 * service that stops answering probes is taken out before a call has to time out on it.
 */
import type { Proxy, ProxyTable } from './proxy-table';

export type ProbeFunction = (proxy: Proxy) => Promise<boolean>;

export class ProxyProber {
  private readonly inFlight = new Set<Proxy>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly table: ProxyTable,
    private readonly probe: ProbeFunction,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    this.timer = setInterval(() => this.round(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Probes every proxy not already being probed. */
  round(): void {
    for (const proxy of this.table.proxies) {
      if (this.inFlight.has(proxy)) continue;
      this.inFlight.add(proxy);
      this.probe(proxy)
        .catch(() => false)
        .then((answered) => {
          this.inFlight.delete(proxy);
          if (this.timer) this.table.probed(proxy, answered);
        });
    }
  }
}
