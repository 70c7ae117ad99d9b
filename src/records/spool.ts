/**
 * The queue of one collector target: call records not yet delivered, in order, in memory and in
 * a durable spool directory (seed 004: stored locally while the home server is away, forwarded
 * once it is back).
 *
 * - Every record gets the next sequence number and waits in memory. A record that is still
 *   undelivered after `spoolAfterMs`, or every record while the collector is down (`urgent`), is
 *   appended to the current segment file; appends are batched and fdatasync'ed every `fsyncMs`.
 *   A record is *acknowledged* once that fdatasync returned: from then on no crash loses it.
 *   Once durable it leaves memory, and is read back from disk when its turn comes.
 * - Invariant: every undelivered record with seq <= `durableLast` is on disk; every other
 *   undelivered record is in memory. `take()` therefore reads disk first, then memory, and
 *   returns records in seq order; `ack()` moves the delivered cursor.
 * - Segments are `seg-<first seq>-<serial>.log`, append-only (one line per record, see spool-line.ts);
 *   a segment whose records are all delivered is deleted. The cursor lives in `cursor`
 *   (rewritten, not fsynced: a stale cursor only makes a collector see a record twice, which the
 *   idempotency key absorbs). A `lock` file holds the owner's pid: one process per spool.
 * - Recovery (`open`) cuts a torn tail of the last segment (a line without `\n` or with a bad
 *   CRC after the last good one) and counts it; a damaged line elsewhere is skipped when read
 *   and counted. Neither stops the relay.
 * - Bounds: the spool never grows past `maxBytes` (when reached: `full`, counted; records wait
 *   in memory). A write that fails (ENOSPC on a full disk, EIO) is cut back, counted, retried
 *   later; records wait in memory meanwhile. Memory holds at most `maxMemoryRecords`; beyond
 *   it the newest records are refused and counted (`dropped`): they were never acknowledged.
 *
 * The packet path never sees this; the event loop never waits on it: file I/O is asynchronous.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp, { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeLine, parseLine, SpooledRecord } from './spool-line';

export interface SpoolOptions {
  /** This target's spool directory; null keeps the queue in memory only (not durable). */
  dir: string | null;
  maxBytes: number;
  maxMemoryRecords: number;
  fsyncMs: number;
  /** An undelivered record is spooled once it has waited this long (0: at the next batch). */
  spoolAfterMs: number;
  /** Segment size before a new segment starts (default: 8 MiB, at most a quarter of maxBytes). */
  segmentBytes?: number;
  /** Pause after a failed write before the next attempt (default 1000 ms). */
  retryMs?: number;
}

export interface SpoolStats {
  /** Records taken into the queue. */
  queued: number;
  /** Records made durable (fsynced). */
  spooled: number;
  /** Records refused because memory was full while the spool could not take them. */
  dropped: number;
  /** Times the size bound stopped the writer. */
  fullEvents: number;
  /** Failed writes and fsyncs, by error code. */
  writeErrors: Record<string, number>;
  /** Torn tails cut off at recovery. */
  torn: number;
  /** Damaged lines skipped. */
  corrupt: number;
  /** Undelivered records found in the spool at start. */
  recovered: number;
}

export interface SpoolEvents {
  full: [bytes: number];
  writeError: [error: NodeJS.ErrnoException];
  torn: [file: string, bytes: number];
  corrupt: [file: string];
}

interface Queued extends SpooledRecord {
  /** performance.now() when queued: decides when the record is due for the spool. */
  mono: number;
}

interface Segment {
  first: number;
  /** Highest seq it holds (for a recovered segment other than the last: an upper bound). */
  last: number;
  name: string;
  /** Durable bytes: the reader never reads past them. */
  size: number;
}

const SEGMENT_PATTERN = /^seg-(\d{16})-\d{6}\.log$/;
const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

export class Spool extends EventEmitter<SpoolEvents> {
  readonly stats: SpoolStats = { queued: 0, spooled: 0, dropped: 0, fullEvents: 0, writeErrors: {}, torn: 0, corrupt: 0, recovered: 0 };
  /** Set while the collector is down: every queued record is due for the spool at once. */
  urgent = false;
  private cursor = 0;
  private durableLast = 0;
  private nextSeq = 1;
  private memory: Queued[] = [];
  private memoryHead = 0;
  private segments: Segment[] = [];
  private active: { segment: Segment; handle: FileHandle } | null = null;
  private bytesOnDisk = 0;
  private isFull = false;
  private retryAt = 0;
  private writing: Promise<void> | null = null;
  private deleting: Promise<void> | null = null;
  private cursorWrite: Promise<void> | null = null;
  private cursorDirty = false;
  private timer: NodeJS.Timeout | null = null;
  /** (last seq, time of its batch's first record) per durable batch, for the oldest age. */
  private marks: Array<{ last: number; at: number }> = [];
  /** The last batch read from disk, kept for a retry after a failed delivery. */
  private readCache: { records: SpooledRecord[]; next: { first: number; offset: number } } | null = null;
  private readonly segmentBytes: number;
  /** Bytes per write batch: shrinks after a failed write (a nearly full disk takes what fits). */
  private writeLimit: number;
  private segmentSerial = 0;
  private closed = false;

  constructor(private readonly options: SpoolOptions) {
    super();
    this.segmentBytes = options.segmentBytes ?? Math.max(4096, Math.min(DEFAULT_SEGMENT_BYTES, Math.floor(options.maxBytes / 4)));
    this.writeLimit = this.maxWrite;
  }

  private get maxWrite(): number {
    return Math.min(WRITE_BATCH_BYTES, this.segmentBytes);
  }

  /** The spool directory, or null for a memory-only queue. */
  get directory(): string | null {
    return this.options.dir;
  }

  get durable(): boolean {
    return this.options.dir !== null;
  }

  /** Bytes of the spool's segments on disk. */
  get bytes(): number {
    return this.bytesOnDisk;
  }

  get full(): boolean {
    return this.isFull;
  }

  /** Undelivered records on disk (acknowledged). */
  get pendingOnDisk(): number {
    return Math.max(0, this.durableLast - this.cursor);
  }

  /** Undelivered records only in memory (not acknowledged). */
  get pendingInMemory(): number {
    let n = this.memory.length - this.memoryHead;
    for (let i = this.memoryHead; i < this.memory.length && this.memory[i].seq <= this.cursor; i++) n--;
    return n;
  }

  get pending(): number {
    return this.pendingOnDisk + this.pendingInMemory;
  }

  /** When the oldest undelivered record was queued (Unix ms), or null when none waits. */
  oldestAt(): number | null {
    if (this.cursor < this.durableLast) {
      const mark = this.marks.find((m) => m.last > this.cursor);
      if (mark) return mark.at;
    }
    for (let i = this.memoryHead; i < this.memory.length; i++) if (this.memory[i].seq > this.cursor) return this.memory[i].at;
    return null;
  }

  /** Recovers the spool directory (if any) and starts the writer. */
  async open(): Promise<void> {
    if (this.options.dir) await this.recover(this.options.dir);
    this.timer = setInterval(() => void this.writeDue(), Math.max(1, this.options.fsyncMs));
    this.timer.unref();
  }

  /** Queues a record; false (counted) when memory is full and it was refused. */
  push(body: string, at = Date.now()): boolean {
    if (this.closed || this.memory.length - this.memoryHead >= this.options.maxMemoryRecords) {
      this.stats.dropped++;
      return false;
    }
    this.memory.push({ seq: this.nextSeq++, at, body, mono: performance.now() });
    this.stats.queued++;
    return true;
  }

  /** The next undelivered records (at most `max`), oldest first; the same ones again until acked. */
  async take(max: number): Promise<SpooledRecord[]> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.cursor >= this.durableLast) return this.takeFromMemory(max);
      const records = await this.readDisk(max);
      if (records.length > 0) return records;
      // Nothing readable is left up to durableLast: only damaged lines (counted when read).
      if (this.cursor < this.durableLast) this.ack(this.durableLast);
    }
    return [];
  }

  /** Everything up to `seq` was delivered. */
  ack(seq: number): void {
    if (seq <= this.cursor) return;
    this.cursor = seq;
    while (this.memoryHead < this.memory.length && this.memory[this.memoryHead].seq <= seq) this.memoryHead++;
    this.compactMemory();
    while (this.marks.length > 0 && this.marks[0].last <= seq) this.marks.shift();
    if (this.options.dir) {
      this.saveCursor();
      this.deleteDelivered();
    }
  }

  /** Writes every queued record to the spool now and waits for the fsync (shutdown). */
  async flush(): Promise<void> {
    if (!this.options.dir) return;
    this.urgent = true;
    for (let round = 0; round < 10_000 && this.pendingInMemory > 0; round++) {
      const before = this.stats.spooled;
      await this.writeDue(true);
      if (this.stats.spooled === before) break;
    }
  }

  /** Flushes, closes the files and releases the lock; returns how many records were not durable. */
  async close(): Promise<number> {
    if (this.closed) return 0;
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
    this.closed = true;
    await this.writing;
    await this.deleting;
    await this.cursorWrite;
    const lost = this.pendingInMemory;
    await this.active?.handle.close().catch(() => undefined);
    this.active = null;
    if (this.options.dir) await fsp.rm(path.join(this.options.dir, 'lock'), { force: true });
    return lost;
  }

  private takeFromMemory(max: number): SpooledRecord[] {
    const out: SpooledRecord[] = [];
    for (let i = this.memoryHead; i < this.memory.length && out.length < max; i++) {
      const r = this.memory[i];
      if (r.seq > this.cursor) out.push({ seq: r.seq, at: r.at, body: r.body });
    }
    return out;
  }

  private compactMemory(): void {
    if (this.memoryHead > 1024 && this.memoryHead * 2 > this.memory.length) {
      this.memory = this.memory.slice(this.memoryHead);
      this.memoryHead = 0;
    }
  }

  // ---- writing ------------------------------------------------------------------------------

  /** One write batch of the records due: all with `force`/`urgent`, else those waiting long enough. */
  private writeDue(force = false): Promise<void> {
    if (!this.options.dir || this.closed) return Promise.resolve();
    if (this.writing) return this.writing;
    if (Date.now() < this.retryAt && !force) return Promise.resolve();
    const run = this.writeBatch(force || this.urgent).finally(() => {
      this.writing = null;
      if (this.segments.length > 0 && this.segments[0].last <= this.cursor) this.deleteDelivered();
    });
    this.writing = run;
    return run;
  }

  private async writeBatch(all: boolean): Promise<void> {
    const due = this.dueRecords(all);
    if (due.length === 0) return;
    const lines = due.map(encodeLine);
    let bytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0);
    while (lines.length > 0 && this.bytesOnDisk + bytes > this.options.maxBytes) {
      bytes -= Buffer.byteLength(lines.pop()!);
    }
    if (lines.length === 0) {
      this.markFull();
      return;
    }
    if (lines.length < due.length) this.markFull();
    else this.isFull = false;
    const records = due.slice(0, lines.length);
    let target: { segment: Segment; handle: FileHandle };
    try {
      target = await this.segmentFor(records[0].seq, bytes);
      await this.append(target, Buffer.from(lines.join(''), 'utf8'));
    } catch (error) {
      this.writeFailed(error as NodeJS.ErrnoException);
      return;
    }
    this.writeLimit = Math.min(this.maxWrite, this.writeLimit * 2);
    const last = records[records.length - 1].seq;
    target.segment.last = last;
    this.durableLast = last;
    this.stats.spooled += records.length;
    const at = records[0].at;
    const mark = this.marks[this.marks.length - 1];
    if (mark && at - mark.at < 1000) mark.last = last;
    else this.marks.push({ last, at });
    while (this.memoryHead < this.memory.length && this.memory[this.memoryHead].seq <= last) this.memoryHead++;
    this.compactMemory();
  }

  private dueRecords(all: boolean): Queued[] {
    const threshold = performance.now() - this.options.spoolAfterMs;
    const floor = Math.max(this.cursor, this.durableLast);
    const out: Queued[] = [];
    let bytes = 0;
    for (let i = this.memoryHead; i < this.memory.length; i++) {
      const r = this.memory[i];
      if (r.seq <= floor) continue;
      if (!all && r.mono > threshold) break;
      bytes += r.body.length + 40;
      if (out.length > 0 && bytes > this.writeLimit) break;
      out.push(r);
    }
    return out;
  }

  private markFull(): void {
    if (this.isFull) return;
    this.isFull = true;
    this.stats.fullEvents++;
    this.emit('full', this.bytesOnDisk);
  }

  /** The open segment to append `bytes` to, starting a new one when the current one is full. */
  private async segmentFor(firstSeq: number, bytes: number): Promise<{ segment: Segment; handle: FileHandle }> {
    if (this.active && this.active.segment.size > 0 && this.active.segment.size + bytes > this.segmentBytes) {
      await this.finishActive();
    }
    if (this.active) return this.active;
    // Unique even when a segment that got no record is replaced by one with the same first seq.
    const name = `seg-${String(firstSeq).padStart(16, '0')}-${String(this.segmentSerial++ % 1e6).padStart(6, '0')}.log`;
    const handle = await fsp.open(path.join(this.options.dir!, name), 'w');
    try {
      await syncDirectory(this.options.dir!);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fsp.rm(path.join(this.options.dir!, name), { force: true }).catch(() => undefined);
      throw error;
    }
    const segment: Segment = { first: firstSeq, last: firstSeq - 1, name, size: 0 };
    this.segments.push(segment);
    this.active = { segment, handle };
    return this.active;
  }

  private async append(target: { segment: Segment; handle: FileHandle }, data: Buffer): Promise<void> {
    const { segment, handle } = target;
    let written = 0;
    try {
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written, segment.size + written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (error) {
      // Cut the partial batch off so the segment ends on a whole line; if that fails too, leave
      // the segment (its tail is found torn on recovery) and write on in a fresh one.
      const cut = await handle.truncate(segment.size).then(
        () => true,
        () => false,
      );
      if (!cut || (error as NodeJS.ErrnoException).syscall === 'fsync' || (error as NodeJS.ErrnoException).syscall === 'fdatasync') {
        await this.finishActive();
      }
      throw error;
    }
    segment.size += data.length;
    this.bytesOnDisk += data.length;
  }

  private async finishActive(): Promise<void> {
    const active = this.active;
    this.active = null;
    if (!active) return;
    await active.handle.close().catch(() => undefined);
    if (active.segment.size === 0) await this.removeSegment(active.segment);
  }

  private writeFailed(error: NodeJS.ErrnoException): void {
    const code = error.code ?? 'EUNKNOWN';
    this.stats.writeErrors[code] = (this.stats.writeErrors[code] ?? 0) + 1;
    this.writeLimit = Math.max(1, Math.floor(this.writeLimit / 4));
    this.retryAt = Date.now() + (this.options.retryMs ?? 1000);
    this.emit('writeError', error);
  }

  // ---- delivered segments and the cursor ----------------------------------------------------

  private deleteDelivered(): void {
    if (this.deleting) return;
    this.deleting = (async () => {
      for (let i = 0; i < 1_000_000; i++) {
        const segment = this.segments[0];
        if (!segment || segment.last > this.cursor) return;
        if (this.active?.segment === segment) {
          // an empty active segment is about to be written: it stays
          if (this.writing || segment.size === 0) return;
          await this.finishActive();
        }
        await this.removeSegment(segment);
      }
    })()
      .catch(() => undefined)
      .finally(() => (this.deleting = null));
  }

  private async removeSegment(segment: Segment): Promise<void> {
    const index = this.segments.indexOf(segment);
    if (index < 0) return;
    this.segments.splice(index, 1);
    this.bytesOnDisk -= segment.size;
    if (this.isFull && this.bytesOnDisk < this.options.maxBytes) this.isFull = false;
    await fsp.rm(path.join(this.options.dir!, segment.name), { force: true }).catch(() => undefined);
  }

  private saveCursor(): void {
    this.cursorDirty = true;
    if (this.cursorWrite) return;
    this.cursorWrite = (async () => {
      for (let i = 0; i < 1_000_000 && this.cursorDirty; i++) {
        this.cursorDirty = false;
        const file = path.join(this.options.dir!, 'cursor');
        await fsp.writeFile(`${file}.tmp`, `${this.cursor}\n`);
        await fsp.rename(`${file}.tmp`, file);
      }
    })()
      .catch(() => undefined)
      .finally(() => (this.cursorWrite = null));
  }

  // ---- reading ------------------------------------------------------------------------------

  private async readDisk(max: number): Promise<SpooledRecord[]> {
    const cache = this.readCache;
    let from: { first: number; offset: number } | null = null;
    if (cache) {
      // A retry after a failed delivery gets the same records again.
      const rest = cache.records.filter((r) => r.seq > this.cursor);
      if (rest.length > 0) return rest;
      from = cache.next;
    }
    let result = from && this.segments.some((s) => s.first === from!.first) ? await this.readFrom(from, max) : null;
    if (!result || result.records.length === 0) {
      const segment = this.segments.find((s) => s.last > this.cursor);
      result = segment ? await this.readFrom({ first: segment.first, offset: 0 }, max) : { records: [], next: { first: 0, offset: 0 } };
    }
    this.readCache = result;
    return result.records;
  }

  /** Up to `max` records after the cursor, reading segments from `from` on. */
  private async readFrom(from: { first: number; offset: number }, max: number): Promise<{ records: SpooledRecord[]; next: { first: number; offset: number } }> {
    const records: SpooledRecord[] = [];
    let position = from;
    let lastSeq = this.cursor;
    for (let guard = 0; guard < 100_000 && records.length < max; guard++) {
      const segment = this.segments.find((s) => s.first === position.first);
      if (!segment) break;
      const { offset, done } = await this.readSegment(segment, position.offset, max - records.length, (r) => {
        if (r.seq <= lastSeq) return;
        lastSeq = r.seq;
        records.push(r);
      });
      position = { first: segment.first, offset };
      if (!done) break;
      const next = this.segments[this.segments.indexOf(segment) + 1];
      if (!next) break;
      position = { first: next.first, offset: 0 };
    }
    return { records, next: position };
  }

  /**
   * Reads whole lines of one segment from `offset` until `want` records were handed to `take` or
   * its durable end; `done` when that end was reached.
   */
  private async readSegment(segment: Segment, offset: number, want: number, take: (r: SpooledRecord) => void): Promise<{ offset: number; done: boolean }> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(path.join(this.options.dir!, segment.name), 'r');
    } catch {
      return { offset, done: true };
    }
    try {
      let taken = 0;
      let chunk = READ_CHUNK;
      while (offset < segment.size && taken < want) {
        const length = Math.min(chunk, segment.size - offset);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        if (bytesRead === 0) break;
        let start = 0;
        for (let end = buffer.indexOf(NEWLINE, 0); end >= 0 && end < bytesRead && taken < want; end = buffer.indexOf(NEWLINE, start)) {
          const record = parseLine(buffer.toString('utf8', start, end));
          if (record === null) this.damaged(segment);
          else if (record.seq > this.cursor) {
            take(record);
            taken++;
          }
          start = end + 1;
        }
        if (start === 0) {
          if (offset + bytesRead >= segment.size) {
            // A last line without its newline: torn before this run, skipped.
            this.damaged(segment);
            return { offset: segment.size, done: true };
          }
          chunk *= 2;
          continue;
        }
        offset += start;
      }
      return { offset, done: offset >= segment.size };
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private damaged(segment: Segment): void {
    this.stats.corrupt++;
    this.emit('corrupt', segment.name);
  }

  // ---- recovery -----------------------------------------------------------------------------

  private async recover(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
    await this.lock(dir);
    this.cursor = await readCursor(path.join(dir, 'cursor'));
    const names = (await fsp.readdir(dir)).filter((n) => SEGMENT_PATTERN.test(n)).sort();
    const found: Segment[] = names.map((name) => ({ name, first: Number(SEGMENT_PATTERN.exec(name)![1]), last: 0, size: 0 }));
    for (let i = 0; i < found.length; i++) {
      const segment = found[i];
      const last = i === found.length - 1;
      const first = last ? await this.scanTail(dir, segment) : await this.measure(dir, segment, found[i + 1].first - 1);
      if (segment.last <= this.cursor || segment.size === 0) {
        await fsp.rm(path.join(dir, segment.name), { force: true }).catch(() => undefined);
        continue;
      }
      this.segments.push(segment);
      this.bytesOnDisk += segment.size;
      this.marks.push({ last: segment.last, at: first ?? Date.now() });
    }
    this.durableLast = this.segments.reduce((n, s) => Math.max(n, s.last), 0);
    this.nextSeq = Math.max(this.durableLast, this.cursor) + 1;
    this.stats.recovered = this.pendingOnDisk;
  }

  /** Size of a segment that is not the last, and the time of its first record. */
  private async measure(dir: string, segment: Segment, last: number): Promise<number | null> {
    const file = path.join(dir, segment.name);
    try {
      segment.size = (await fsp.stat(file)).size;
      segment.last = last;
      const handle = await fsp.open(file, 'r');
      try {
        const buffer = Buffer.alloc(Math.min(65536, segment.size));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
        const end = buffer.indexOf(NEWLINE);
        return end >= 0 && end < bytesRead ? (parseLine(buffer.toString('utf8', 0, end))?.at ?? null) : null;
      } finally {
        await handle.close();
      }
    } catch {
      segment.size = 0;
      return null;
    }
  }

  /**
   * Validates the last segment line by line (the only one a crash can have torn, since a
   * segment is complete and fsynced before the next starts): cuts a torn tail, counts damaged
   * lines, finds its last seq. Returns the time of its first record.
   */
  private async scanTail(dir: string, segment: Segment): Promise<number | null> {
    const file = path.join(dir, segment.name);
    let data: Buffer;
    try {
      data = await fsp.readFile(file);
    } catch {
      segment.size = 0;
      return null;
    }
    let start = 0;
    let validEnd = 0;
    let first: number | null = null;
    segment.last = segment.first - 1;
    for (let end = data.indexOf(NEWLINE); end >= 0; end = data.indexOf(NEWLINE, start)) {
      const record = parseLine(data.toString('utf8', start, end));
      start = end + 1;
      // a damaged line followed by good ones is skipped (and counted) when read
      if (record === null) continue;
      first ??= record.at;
      segment.last = Math.max(segment.last, record.seq);
      validEnd = start;
    }
    segment.size = validEnd;
    if (validEnd < data.length) {
      this.stats.torn++;
      this.emit('torn', segment.name, data.length - validEnd);
      await fsp.truncate(file, validEnd).catch(() => undefined);
    }
    return first;
  }

  /** Takes the spool's lock file; a lock left by a process that is gone (SIGKILL) is taken over. */
  private async lock(dir: string): Promise<void> {
    const file = path.join(dir, 'lock');
    let owner = NaN;
    try {
      owner = Number((await fsp.readFile(file, 'utf8')).trim());
    } catch {
      // no lock yet
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw new Error(`spool ${dir} is in use by process ${owner}`);
    }
    await fsp.writeFile(file, `${process.pid}\n`);
  }
}

/** A new file's directory entry is durable only once its directory is fsynced. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readCursor(file: string): Promise<number> {
  try {
    const n = Number((await fsp.readFile(file, 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Spool directories under `root` that hold segments but belong to none of `names`. */
export function orphanSpools(root: string, names: readonly string[]): string[] {
  try {
    return fs
      .readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !names.includes(d.name))
      .filter((d) => fs.readdirSync(path.join(root, d.name)).some((n) => SEGMENT_PATTERN.test(n)))
      .map((d) => path.join(root, d.name));
  } catch {
    return [];
  }
}
