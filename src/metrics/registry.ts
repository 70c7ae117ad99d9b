/**
 * Prometheus metrics. Native counters are not copied on every packet: they are read from the
 * engine (without stopping a worker) when /metrics is scraped, and mapped to metric names from
 * the engine's own counter list, so a counter added in C++ appears here without a second list.
 * Control-plane sources register their own collectors through `addCollector`.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { Relay } from '../native/relay';

/** Engine counters that are levels (gauges) rather than totals. */
const engineGauges = new Set(['streams', 'sockets']);

/** Per-reason drop counters, exported as one labelled metric. */
const dropPrefix = 'drops_';

export class Metrics {
  readonly registry = new client.Registry();
  private readonly collectors: Array<() => void> = [];

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'rtphub_process_' });
  }

  /** Runs `collect` before every scrape (to refresh gauges from their sources). */
  addCollector(collect: () => void): void {
    this.collectors.push(collect);
  }

  /** Exposes the relay's engine counters, port pool and backend. */
  watchRelay(relay: Relay): void {
    const names = relay.closed ? [] : Object.keys(relay.stats());
    const totals = new client.Gauge({
      name: 'rtphub_engine_total',
      help: 'Data-plane totals since start, by counter (see README: metrics)',
      labelNames: ['counter'],
      registers: [this.registry],
    });
    const drops = new client.Gauge({
      name: 'rtphub_packets_dropped_total',
      help: 'Packets dropped by the data plane, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    const levels = new client.Gauge({
      name: 'rtphub_engine_current',
      help: 'Data-plane levels: live streams and open sockets',
      labelNames: ['counter'],
      registers: [this.registry],
    });
    const ports = new client.Gauge({
      name: 'rtphub_ports',
      help: 'Media ports of the pool, by state',
      labelNames: ['state'],
      registers: [this.registry],
    });
    this.addCollector(() => {
      if (relay.closed) return;
      const stats = relay.stats();
      for (const name of names) {
        if (engineGauges.has(name)) levels.set({ counter: name }, stats[name]);
        else if (name.startsWith(dropPrefix)) drops.set({ reason: name.slice(dropPrefix.length) }, stats[name]);
        else totals.set({ counter: name }, stats[name]);
      }
      const info = relay.info();
      ports.set({ state: 'in_use' }, info.portsInUse);
      ports.set({ state: 'free' }, info.portsTotal - info.portsInUse);
    });
  }

  async render(): Promise<string> {
    for (const collect of this.collectors) collect();
    return this.registry.metrics();
  }

  /** Serves /metrics on `address:port`; resolves with the bound address. */
  async listen(address: string, port: number): Promise<MetricsServer> {
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.render().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (error: Error) => res.writeHead(500).end(`${error.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    return new MetricsServer(server);
  }
}

export class MetricsServer {
  constructor(private readonly server: http.Server) {}

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
