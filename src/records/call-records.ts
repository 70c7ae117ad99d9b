/**
 * Call records: every call this relay carried yields one record when it ends (delete, timeout,
 * shutdown, or dropped at a cold-standby takeover), written to each `--cdr-target` through its
 * own store-and-forward queue. Writing a record is synchronous and cheap (build, serialise,
 * queue); everything after it is asynchronous, so the event loop never waits for a collector.
 *
 * A call held on standby for the peer relay yields no record here: the peer carries it and
 * writes it. When this relay adopts such a call (hot takeover) and the call later ends, the
 * record comes from this relay, with the restoration-record version it had reached.
 */
import os from 'node:os';
import path from 'node:path';
import type pino from 'pino';
import type { Call } from '../calls/call';
import type { MediaSession } from '../calls/media-session';
import type { CallRegistry } from '../calls/call-registry';
import type { EndReason } from '../calls/types';
import { ConfigError } from '../config/load';
import type { Config } from '../config/options';
import type { HaNode } from '../ha/ha-node';
import type { Metrics } from '../metrics/registry';
import type { Relay } from '../native/relay';
import { buildCallDetailRecord, CallDetailRecord } from './call-detail-record';
import { Collector, parseTarget, Target } from './collector';
import { FileCollector } from './file-collector';
import { Forwarder } from './forwarder';
import { HttpCollector } from './http-collector';
import { watchRecords } from './record-metrics';
import { RedisCollector } from './redis-collector';
import { orphanSpools, Spool } from './spool';
import { StreamCounters } from './stream-counters';

/** A sampling round is spread over this many timer ticks. */

/** How long a standby call is remembered after it is gone (for a late cold-takeover drop event). */
const STANDBY_MEMORY_MS = 60_000;

/** The end reason of a standby call dropped when this relay took over in cold mode. */
export const TAKEOVER_DROPPED = 'takeover-dropped';

export interface CallRecordsOptions {
  calls: CallRegistry;
  relay: Relay;
  /** This relay's name in the records. */
  node: string;
  forwarders: Forwarder[];
  log: pino.Logger;
  /** How long shutdown waits for collectors before spooling what is left (ms). */
  closeGraceMs: number;
  /** How often calls held on standby for the peer are looked over (ms; default 500). */
  sampleMs?: number;
  /** The HA node, once it runs (its cold-standby drops end calls). */
  ha?: () => HaNode | null;
}

export class CallRecords {
  /** When this relay process started writing records (in every record: `relay_boot`). */
  readonly boot = new Date().toISOString();
  private writtenCount = 0;
  private readonly counters: StreamCounters;
  /**
   * Calls held for the peer, kept so a cold takeover that drops them can record them; kept a
   * while after they are gone (`goneAt`), since the drop event follows the removals.
   */
  private readonly standby = new Map<string, { call: Call; goneAt: number | null }>();
  private readonly sampler: NodeJS.Timeout;
  private haWatch: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: CallRecordsOptions) {
    this.counters = new StreamCounters();
    options.calls.on('releasing', this.onReleasing);
    options.calls.on('ended', this.onEnded);
    this.sampler = setInterval(() => this.sample(), Math.max(1, options.sampleMs ?? 500));
    this.sampler.unref();
    if (options.ha) this.watchHa(options.ha);
  }

  get written(): number {
    return this.writtenCount;
  }

  get forwarders(): readonly Forwarder[] {
    return this.options.forwarders;
  }

  /** Writes the record of an ended call to every target; returns it. */
  write(call: Call, reason: string): CallDetailRecord {
    const endedAt = Date.now();
    const record = buildCallDetailRecord({
      call,
      reason,
      node: this.options.node,
      boot: this.boot,
      seq: ++this.writtenCount,
      endedAt,
      answeredAt: call.answeredAt,
      totals: (media) => this.counters.totals(media),
    });
    const body = JSON.stringify(record);
    for (const f of this.options.forwarders) f.push(body, endedAt);
    return record;
  }

  /** Stops writing; gives collectors a short grace, spools the rest. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sampler);
    if (this.haWatch) clearInterval(this.haWatch);
    this.options.calls.off('releasing', this.onReleasing);
    this.options.calls.off('ended', this.onEnded);
    const lost = await Promise.all(this.options.forwarders.map((f) => f.close(this.options.closeGraceMs)));
    lost.forEach((n, i) => {
      if (n > 0) this.options.log.error({ target: this.options.forwarders[i].label, records: n }, 'call records lost at shutdown: neither delivered nor spooled');
    });
  }

  private readonly onReleasing = (_call: Call, media: MediaSession): void => this.counters.releasing(media);

  private readonly onEnded = (call: Call, reason: EndReason): void => {
    if (this.standby.get(call.callId)?.call === call) this.standby.delete(call.callId);
    if (!call.standby) this.write(call, reason);
  };

  /** Keeps the list of calls held for the peer current (a cold takeover records the ones it drops). */
  private sample(): void {
    const now = Date.now();
    for (const [id, entry] of this.standby) {
      if (!entry.call.ended && entry.call.standby) continue;
      entry.goneAt ??= now;
      if (now - entry.goneAt > STANDBY_MEMORY_MS) this.standby.delete(id);
    }
    for (const call of this.options.calls.calls.values()) {
      if (call.standby && this.standby.get(call.callId)?.call !== call) this.standby.set(call.callId, { call, goneAt: null });
    }
  }

  /** Subscribes to the HA node's cold-standby drops as soon as the node exists. */
  private watchHa(node: () => HaNode | null): void {
    const attach = (): boolean => {
      const ha = node();
      if (!ha) return false;
      ha.on('dropped', (ids) => this.dropped(ids));
      return true;
    };
    if (attach()) return;
    this.haWatch = setInterval(() => {
      if (attach() && this.haWatch) clearInterval(this.haWatch);
    }, 100);
    this.haWatch.unref();
  }

  private dropped(ids: string[]): void {
    let unknown = 0;
    for (const id of ids) {
      const entry = this.standby.get(id);
      this.standby.delete(id);
      if (entry) this.write(entry.call, TAKEOVER_DROPPED);
      else unknown++;
    }
    if (unknown > 0) this.options.log.warn({ calls: unknown }, 'calls dropped at takeover before their state was seen: no record');
  }
}

function openCollector(target: Target, timeoutMs: number): Collector {
  if (target.kind === 'http') return new HttpCollector(target.url, { timeoutMs });
  if (target.kind === 'redis') return new RedisCollector(target.url, { timeoutMs });
  return new FileCollector(target.url);
}

/** One log line per error code and minute, not one per retry. */
function throttled(): (key: string, write: () => void) => void {
  const last = new Map<string, number>();
  return (key, write) => {
    const now = Date.now();
    if (now - (last.get(key) ?? 0) < 60_000) return;
    last.set(key, now);
    write();
  };
}

async function openForwarder(config: Config, target: Target, log: pino.Logger): Promise<Forwarder> {
  const root = config['spool-dir'];
  const dir = root ? path.join(root, target.spoolName) : null;
  const spool = new Spool({
    dir,
    maxBytes: config['spool-max-bytes'],
    maxMemoryRecords: config['spool-memory-records'],
    fsyncMs: config['spool-fsync-ms'],
    spoolAfterMs: config['spool-after-ms'],
  });
  const t = { target: target.label, spool: dir };
  const once = throttled();
  spool.on('full', (bytes) => log.error({ ...t, bytes }, 'spool full (--spool-max-bytes): new records wait in memory, then are dropped'));
  spool.on('writeError', (e) => once(e.code ?? 'EUNKNOWN', () => log.error({ ...t, err: e.message, code: e.code }, 'spool write failed: records wait in memory and are retried')));
  spool.on('torn', (file, bytes) => log.warn({ ...t, file, bytes }, 'torn tail of a spool segment cut off (a write cut short by a crash; never acknowledged)'));
  spool.on('corrupt', (file) => once(`corrupt:${file}`, () => log.warn({ ...t, file }, 'damaged line in a spool segment skipped')));
  try {
    await spool.open();
  } catch (error) {
    throw new ConfigError(`--spool-dir: cannot use ${dir}: ${(error as Error).message}`);
  }
  if (spool.stats.recovered > 0) log.info({ ...t, records: spool.stats.recovered }, 'undelivered call records found in the spool: forwarding them first');
  const forwarder = new Forwarder({
    label: target.label,
    collector: openCollector(target, config['cdr-timeout-ms']),
    spool,
    batch: config['cdr-batch'],
    retryMs: config['cdr-retry-ms'],
    timeoutMs: config['cdr-timeout-ms'],
  });
  forwarder.on('down', (e) => log.warn({ ...t, kind: e.kind, err: e.message }, 'collector down: call records go to the spool'));
  forwarder.on('deadLetter', (record, e, file) =>
    log.error({ ...t, seq: record.seq, err: e.message, file }, file ? 'call record rejected by the collector for good: set aside in the dead letters' : 'call record rejected by the collector for good: dropped (no --spool-dir for dead letters)'),
  );
  forwarder.on('up', (ms) => log.info({ ...t, downForMs: ms, pending: spool.pending }, 'collector back: forwarding the spooled call records in order'));
  return forwarder;
}

/**
 * Starts call records for the `--cdr-target`s (null when there are none): recovers each
 * target's spool, starts forwarding it, and writes a record for every call that ends from now on.
 */
export async function startRecords(
  config: Config,
  calls: CallRegistry,
  relay: Relay,
  metrics: Metrics,
  log: pino.Logger,
  ha?: () => HaNode | null,
): Promise<CallRecords | null> {
  const targets = config['cdr-target'].map(parseTarget);
  if (targets.length === 0) return null;
  const names = targets.map((t) => t.spoolName);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new ConfigError(`--cdr-target: the same target twice (${targets[names.indexOf(twice)].label})`);
  const root = config['spool-dir'];
  if (!root) log.warn('no --spool-dir: call records wait in memory while a collector is away, and a crash loses them');
  const forwarders: Forwarder[] = [];
  try {
    for (const target of targets) forwarders.push(await openForwarder(config, target, log));
  } catch (error) {
    await Promise.all(forwarders.map((f) => f.close(0)));
    throw error;
  }
  if (root) {
    for (const dir of orphanSpools(root, names)) log.warn({ spool: dir }, 'spool of a target no longer configured: its records are not forwarded');
  }
  const records = new CallRecords({
    calls,
    relay,
    node: config['ha-node-id'] || os.hostname(),
    forwarders,
    log,
    closeGraceMs: Math.min(config['cdr-timeout-ms'], 2000),
    ha: config['ha-peer'] ? ha : undefined,
  });
  watchRecords(metrics, records);
  for (const f of forwarders) f.start();
  return records;
}
