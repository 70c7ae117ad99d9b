/**
 * Store-and-forward to one collector (seed 004): records are sent in order, one batch in flight
 * at a time, from the target's queue (memory, then the durable spool). A batch the collector
 * fails (unreachable, an error status, no answer within the timeout) marks the collector down:
 * the queue then spools every record at once, and a health check every `retryMs` looks for the
 * collector again; the first check that passes resumes sending from the oldest undelivered
 * record. Nothing here blocks the event loop or the packet path: each step is a callback.
 *
 * Delivery is at least once: a batch that timed out may have been taken, and a crash between a
 * delivery and the cursor's save re-sends it; the record's `id` lets the collector drop the copy.
 *
 * Dead letters: a batch the collector rejects for good (kind `rejected`, e.g. HTTP 400) is sent
 * again one record at a time, so that only the records it refuses are set aside: each one is
 * appended (and fsynced) to `dead-letters.jsonl` in the target's spool directory, counted, and
 * passed over, so one bad record never holds up the ones behind it. Without a spool directory a
 * dead letter is only counted and logged.
 */
import { EventEmitter } from 'node:events';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Collector, CollectorError, failure, FailureKind } from './collector';
import type { Spool } from './spool';
import type { SpooledRecord } from './spool-line';

export interface ForwarderOptions {
  /** The target's URL without password (logs, metric labels). */
  label: string;
  collector: Collector;
  spool: Spool;
  /** Most records per request. */
  batch: number;
  /** Health-check interval while the collector is down. */
  retryMs: number;
  /** The collector's own timeout; the forwarder gives up a second after it in any case. */
  timeoutMs: number;
}

export interface ForwarderStats {
  delivered: number;
  failures: Record<FailureKind, number>;
  failedChecks: number;
  /** Reads of the spool that failed (I/O errors); retried. */
  spoolReadErrors: number;
  /** Records not made durable at shutdown (collector away, spool unusable). */
  lostAtClose: number;
  /** Records the collector rejected for good, set aside as dead letters. */
  deadLetters: number;
}

export interface ForwarderEvents {
  down: [error: CollectorError];
  up: [downForMs: number];
  delivered: [records: SpooledRecord[], at: number];
  deadLetter: [record: SpooledRecord, error: CollectorError, file: string | null];
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CollectorError('timeout', `no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, expiry]).finally(() => clearTimeout(timer));
}

/** The dead-letter file in a target's spool directory (JSON lines: rejected_at, reason, record). */
export const DEAD_LETTERS = 'dead-letters.jsonl';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Forwarder extends EventEmitter<ForwarderEvents> {
  readonly stats: ForwarderStats = { delivered: 0, failures: { unreachable: 0, refused: 0, timeout: 0, rejected: 0 }, failedChecks: 0, spoolReadErrors: 0, lostAtClose: 0, deadLetters: 0 };
  private isUp = true;
  private downSince = 0;
  private pumping: Promise<void> | null = null;
  private pushedWhilePumping = false;
  private probe: NodeJS.Timeout | null = null;
  private halted = false;
  private closing = false;

  constructor(private readonly options: ForwarderOptions) {
    super();
  }

  get label(): string {
    return this.options.label;
  }

  get up(): boolean {
    return this.isUp;
  }

  get spool(): Spool {
    return this.options.spool;
  }

  /** Starts forwarding whatever the spool recovered. */
  start(): void {
    this.kick();
  }

  /** Queues a serialised record (`at`: when it was written, Unix ms); false if it was refused. */
  push(body: string, at: number): boolean {
    const accepted = this.options.spool.push(body, at);
    if (this.pumping) this.pushedWhilePumping = true;
    else this.kick();
    return accepted;
  }

  /**
   * Gives the collector up to `graceMs` to take what is queued, then spools the rest (fsync) and
   * closes. Resolves with the number of records that could be neither delivered nor spooled.
   */
  async close(graceMs: number): Promise<number> {
    this.closing = true;
    if (this.probe) clearTimeout(this.probe);
    const deadline = Date.now() + graceMs;
    for (let i = 0; i < 100_000 && this.isUp && this.options.spool.pending > 0 && Date.now() < deadline; i++) {
      this.kick();
      await Promise.race([this.pumping ?? sleep(5), sleep(Math.max(1, deadline - Date.now()))]);
    }
    this.halted = true;
    await Promise.race([this.pumping, sleep(this.options.timeoutMs + 1000)]);
    this.stats.lostAtClose = await this.options.spool.close();
    await this.options.collector.close();
    return this.stats.lostAtClose;
  }

  private kick(): void {
    if (!this.isUp || this.pumping || this.halted) return;
    this.pushedWhilePumping = false;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.pushedWhilePumping) setImmediate(() => this.kick());
    });
  }

  /** Sends batches until the queue is empty or the collector fails one (then kicked again). */
  private async pump(): Promise<void> {
    const { spool, collector, batch, timeoutMs } = this.options;
    for (let sent = 0; !this.halted; sent++) {
      if (sent === 10_000) {
        this.pushedWhilePumping = true;
        return;
      }
      let records: SpooledRecord[];
      try {
        records = await spool.take(batch);
      } catch {
        // the spool could not be read (I/O error): try again later, in order
        this.stats.spoolReadErrors++;
        setTimeout(() => this.kick(), this.options.retryMs).unref();
        return;
      }
      if (records.length === 0 || this.halted) return;
      try {
        await withTimeout(collector.send(records.map((r) => r.body)), timeoutMs + 1000);
      } catch (error) {
        const reason = failure(error, this.options.label);
        if (reason.kind !== 'rejected' || !(await this.oneByOne(records, reason))) {
          this.failed(reason);
          return;
        }
        continue;
      }
      spool.ack(records[records.length - 1].seq);
      this.stats.delivered += records.length;
      this.emit('delivered', records, Date.now());
    }
  }

  /**
   * A rejected batch, sent again record by record: delivered ones are acked, rejected ones become
   * dead letters. False if another failure stops it (the rest is retried as usual).
   */
  private async oneByOne(records: SpooledRecord[], batchError: CollectorError): Promise<boolean> {
    const { spool, collector, timeoutMs } = this.options;
    this.stats.failures.rejected++;
    for (const record of records) {
      if (this.halted) return false;
      let rejected: CollectorError | null = records.length === 1 ? batchError : null;
      if (!rejected) {
        try {
          await withTimeout(collector.send([record.body]), timeoutMs + 1000);
        } catch (error) {
          const reason = failure(error, this.options.label);
          if (reason.kind !== 'rejected') {
            this.failed(reason);
            return false;
          }
          rejected = reason;
        }
      }
      if (rejected) {
        if (!(await this.deadLetter(record, rejected))) return false;
      } else {
        this.stats.delivered++;
        this.emit('delivered', [record], Date.now());
      }
      spool.ack(record.seq);
    }
    return true;
  }

  /** Appends a rejected record to the dead letters (fsynced); false if that write failed. */
  private async deadLetter(record: SpooledRecord, error: CollectorError): Promise<boolean> {
    const dir = this.options.spool.directory;
    const file = dir ? path.join(dir, DEAD_LETTERS) : null;
    if (file) {
      try {
        const handle = await open(file, 'a', 0o600);
        try {
          await handle.appendFile(`${JSON.stringify({ rejected_at: new Date().toISOString(), reason: error.message, record: record.body })}\n`);
          await handle.datasync();
        } finally {
          await handle.close();
        }
      } catch {
        // not set aside: the record stays queued and the collector is treated as down
        this.failed(new CollectorError('refused', `${error.message}; the dead-letter file could not be written`));
        return false;
      }
    }
    this.stats.deadLetters++;
    this.emit('deadLetter', record, error, file);
    return true;
  }

  private failed(error: CollectorError): void {
    this.stats.failures[error.kind]++;
    if (this.isUp) {
      this.isUp = false;
      this.downSince = Date.now();
      this.options.spool.urgent = true;
      this.emit('down', error);
    }
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.closing) return;
    this.probe = setTimeout(() => void this.check(), this.options.retryMs);
    this.probe.unref();
  }

  /** The health check: the collector answers again, so forwarding resumes, oldest first. */
  private async check(): Promise<void> {
    this.probe = null;
    try {
      await withTimeout(this.options.collector.check(), this.options.timeoutMs + 1000);
    } catch {
      this.stats.failedChecks++;
      this.scheduleCheck();
      return;
    }
    if (this.closing) return;
    this.isUp = true;
    this.options.spool.urgent = false;
    this.emit('up', Date.now() - this.downSince);
    this.kick();
  }
}
