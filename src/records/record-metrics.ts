/**
 * Prometheus metrics of call records, per collector target (`target`: its URL without
 * password). Totals are read from the forwarders' and spools' own counters at scrape time;
 * delivery latency (record written → collector took it) is observed as batches are delivered.
 */
import client from 'prom-client';
import type { Metrics } from '../metrics/registry';
import type { Forwarder } from './forwarder';
import type { SpooledRecord } from './spool-line';

export interface RecordSource {
  /** Records written (one per ended call this relay carried). */
  readonly written: number;
  readonly forwarders: readonly Forwarder[];
}

/** A Counter set from a running total read at scrape time. */
class TotalCounter {
  private readonly metric: client.Counter<string>;
  private readonly last = new Map<string, number>();

  constructor(registry: client.Registry, name: string, help: string, labelNames: string[]) {
    this.metric = new client.Counter({ name, help, labelNames, registers: [registry] });
  }

  set(labels: Record<string, string>, value: number): void {
    const key = JSON.stringify(labels);
    const delta = value - (this.last.get(key) ?? 0);
    if (delta > 0) this.metric.inc(labels, delta);
    else if (!this.last.has(key)) this.metric.inc(labels, 0);
    this.last.set(key, Math.max(value, this.last.get(key) ?? 0));
  }
}

export function watchRecords(metrics: Metrics, source: RecordSource): void {
  const registry = metrics.registry;
  const target = ['target'];
  const written = new TotalCounter(registry, 'rtphub_records_written_total', 'Call records written (one per ended call the relay carried)', []);
  const delivered = new TotalCounter(registry, 'rtphub_records_delivered_total', 'Call records a collector took', target);
  const spooled = new TotalCounter(registry, 'rtphub_records_spooled_total', 'Call records written to the durable spool (fsynced) while not delivered', target);
  const dropped = new TotalCounter(registry, 'rtphub_records_dropped_total', 'Call records refused: memory full while the spool could take nothing more', target);
  const failures = new TotalCounter(registry, 'rtphub_records_delivery_failures_total', 'Failed deliveries, by kind (unreachable, refused, timeout, rejected: refused for good, then sent record by record)', [...target, 'kind']);
  const deadLetters = new TotalCounter(registry, 'rtphub_records_dead_letters_total', 'Call records the collector rejected for good, set aside in dead-letters.jsonl', target);
  const failedChecks = new TotalCounter(registry, 'rtphub_records_health_checks_failed_total', 'Health checks of a down collector that failed', target);
  const spoolErrors = new TotalCounter(registry, 'rtphub_records_spool_errors_total', 'Failed spool writes, by error code (ENOSPC: disk full)', [...target, 'code']);
  const damaged = new TotalCounter(registry, 'rtphub_records_spool_damaged_total', 'Spool damage found: torn tails cut at start, damaged lines skipped', [...target, 'kind']);
  const fullEvents = new TotalCounter(registry, 'rtphub_records_spool_full_total', 'Times the spool reached --spool-max-bytes', target);
  const gauge = (name: string, help: string, labelNames = target): client.Gauge<string> => new client.Gauge({ name, help, labelNames, registers: [registry] });
  const bytes = gauge('rtphub_records_spool_bytes', 'Size of the spool on disk');
  const pending = gauge('rtphub_records_pending', 'Records not yet delivered: in the spool (acknowledged) or only in memory', [...target, 'where']);
  const oldest = gauge('rtphub_records_oldest_pending_seconds', 'Age of the oldest record not yet delivered (0: none)');
  const full = gauge('rtphub_records_spool_full', '1 while the spool is at --spool-max-bytes');
  const up = gauge('rtphub_records_collector_up', '1 while the collector takes records, 0 while it is down');
  const latency = new client.Histogram({
    name: 'rtphub_records_delivery_seconds',
    help: 'Time from a record being written to its collector taking it',
    labelNames: target,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600],
    registers: [registry],
  });
  for (const f of source.forwarders) {
    f.on('delivered', (records: SpooledRecord[], at: number) => {
      for (const r of records) latency.observe({ target: f.label }, Math.max(0, at - r.at) / 1000);
    });
  }
  metrics.addCollector(() => {
    written.set({}, source.written);
    const now = Date.now();
    for (const f of source.forwarders) {
      const t = { target: f.label };
      const s = f.spool.stats;
      delivered.set(t, f.stats.delivered);
      spooled.set(t, s.spooled);
      dropped.set(t, s.dropped);
      fullEvents.set(t, s.fullEvents);
      for (const [kind, n] of Object.entries(f.stats.failures)) failures.set({ ...t, kind }, n);
      failedChecks.set(t, f.stats.failedChecks);
      deadLetters.set(t, f.stats.deadLetters);
      for (const [code, n] of Object.entries(s.writeErrors)) spoolErrors.set({ ...t, code }, n);
      damaged.set({ ...t, kind: 'torn' }, s.torn);
      damaged.set({ ...t, kind: 'corrupt' }, s.corrupt);
      bytes.set(t, f.spool.bytes);
      pending.set({ ...t, where: 'spool' }, f.spool.pendingOnDisk);
      pending.set({ ...t, where: 'memory' }, f.spool.pendingInMemory);
      const at = f.spool.oldestAt();
      oldest.set(t, at === null ? 0 : Math.max(0, now - at) / 1000);
      full.set(t, f.spool.full ? 1 : 0);
      up.set(t, f.up ? 1 : 0);
    }
  });
}
