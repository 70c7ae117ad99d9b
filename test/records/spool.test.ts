// The durable spool of one collector target, on real files: records come out in order, across a
// restart; a torn tail (a crash mid-write) is cut and counted, a damaged line skipped and
// counted; the size bound and a full disk (a 64 KiB tmpfs) keep records in memory, counted,
// and lose none that were acknowledged; memory beyond its bound refuses the newest.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { ExecutionContext } from 'ava';
import { Spool, SpoolOptions } from '../../src/records/spool';
import { parseLine } from '../../src/records/spool-line';

function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtphub-spool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openSpool(t: ExecutionContext, options: Partial<SpoolOptions> & { dir: string | null }): Promise<Spool> {
  const spool = new Spool({ maxBytes: 1 << 30, maxMemoryRecords: 100_000, fsyncMs: 5, spoolAfterMs: 0, ...options });
  await spool.open();
  t.teardown(() => spool.close());
  return spool;
}

const body = (i: number): string => JSON.stringify({ id: `r${i}`, n: i, pad: 'x'.repeat(100) });

/** Takes and acks everything; returns the `n` of each record, in the order delivered. */
async function drain(spool: Spool, batch = 64): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const records = await spool.take(batch);
    if (records.length === 0) break;
    for (const r of records) out.push((JSON.parse(r.body) as { n: number }).n);
    spool.ack(records[records.length - 1].seq);
  }
  return out;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const segments = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).sort();

test('records come out in order, from memory and from disk, and a restart recovers the undelivered ones', async (t) => {
  const dir = tempDir(t);
  const first = new Spool({ dir, maxBytes: 1 << 30, maxMemoryRecords: 100_000, fsyncMs: 5, spoolAfterMs: 0, segmentBytes: 8192 });
  await first.open();
  for (let i = 0; i < 500; i++) first.push(body(i));
  await until(() => first.stats.spooled === 500, 'every record spooled');
  t.true(segments(dir).length > 3, 'several segments');
  // deliver the first 200, then stop (as a crash after an fsync would: close flushes nothing new)
  const delivered: number[] = [];
  for (let i = 0; i < 100 && delivered.length < 200; i++) {
    const records = await first.take(50);
    for (const r of records) delivered.push((JSON.parse(r.body) as { n: number }).n);
    first.ack(records[records.length - 1].seq);
  }
  t.deepEqual(delivered, range(0, 200));
  await first.close();

  const second = await openSpool(t, { dir, segmentBytes: 8192 });
  t.is(second.stats.recovered, 300);
  second.push(body(500));
  t.deepEqual(await drain(second), range(200, 501));
  await until(() => second.bytes === 0 && segments(dir).length === 0, 'delivered segments deleted');
});

test('a record is taken again until it is acked (a failed delivery is retried in order)', async (t) => {
  const spool = await openSpool(t, { dir: tempDir(t) });
  for (let i = 0; i < 10; i++) spool.push(body(i));
  await until(() => spool.stats.spooled === 10, 'spooled');
  const once = await spool.take(4);
  const again = await spool.take(4);
  t.deepEqual(again.map((r) => r.seq), once.map((r) => r.seq));
  spool.ack(once[3].seq);
  t.deepEqual(await drain(spool), range(4, 10));
});

test('a torn tail is cut off at recovery and counted; everything acknowledged before it survives', async (t) => {
  const dir = tempDir(t);
  const first = await openSpool(t, { dir });
  for (let i = 0; i < 50; i++) first.push(body(i));
  await until(() => first.stats.spooled === 50, 'spooled');
  await first.close();
  const [segment] = segments(dir);
  const file = path.join(dir, segment);
  // a crash in the middle of the next append: half a line, no newline
  fs.appendFileSync(file, '51 1700000000000 deadbeef {"id":"r51","n":5');
  const tornSize = fs.statSync(file).size;

  const second = await openSpool(t, { dir });
  t.is(second.stats.torn, 1);
  t.is(second.stats.recovered, 50);
  t.true(fs.statSync(file).size < tornSize, 'the torn bytes were cut');
  second.push(body(50));
  t.deepEqual(await drain(second), range(0, 51));
});

test('a damaged line in the middle of a segment is skipped and counted, not a crash', async (t) => {
  const dir = tempDir(t);
  const first = await openSpool(t, { dir });
  for (let i = 0; i < 20; i++) first.push(body(i));
  await until(() => first.stats.spooled === 20, 'spooled');
  await first.close();
  const file = path.join(dir, segments(dir)[0]);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines[7] = lines[7].replace('"n":7', '"n":8'); // bit rot: the CRC no longer matches
  fs.writeFileSync(file, lines.join('\n'));
  t.is(parseLine(lines[7]), null);

  const second = await openSpool(t, { dir });
  t.deepEqual(await drain(second), [...range(0, 7), ...range(8, 20)]);
  t.is(second.stats.corrupt, 1);
});

test('at --spool-max-bytes new records wait in memory (never replacing spooled ones), then go once space is freed', async (t) => {
  const dir = tempDir(t);
  const spool = await openSpool(t, { dir, maxBytes: 8192, segmentBytes: 2048 });
  for (let i = 0; i < 200; i++) spool.push(body(i));
  await until(() => spool.full, 'the bound reached');
  t.true(spool.bytes <= 8192);
  t.is(spool.stats.fullEvents, 1);
  t.true(spool.pendingInMemory > 0, 'the rest waits in memory');
  t.is(spool.pending, 200);
  t.deepEqual(await drain(spool), range(0, 200));
  await until(() => !spool.full && spool.bytes === 0, 'delivered segments deleted, the bound cleared');
});

test('beyond --spool-memory-records the newest records are refused and counted', async (t) => {
  const spool = await openSpool(t, { dir: null, maxMemoryRecords: 100 });
  let refused = 0;
  for (let i = 0; i < 150; i++) if (!spool.push(body(i))) refused++;
  t.is(refused, 50);
  t.is(spool.stats.dropped, 50);
  t.deepEqual(await drain(spool), range(0, 100));
});

test('full disk (a 64 KiB tmpfs): ENOSPC is counted, records wait in memory, nothing acknowledged is lost', async (t) => {
  const dir = tempDir(t);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    t.log('cannot mount a tmpfs here (not root?): skipped');
    t.pass();
    return;
  }
  t.teardown(() => {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  });
  const spool = await openSpool(t, { dir: path.join(dir, 'target'), retryMs: 20 });
  for (let i = 0; i < 2000; i++) spool.push(body(i));
  // the writer shrinks its batches after each failure, so it fills the disk before it stops
  await until(() => (spool.stats.writeErrors.ENOSPC ?? 0) >= 8, 'the disk full (ENOSPC)');
  const acknowledged = spool.stats.spooled;
  t.true(acknowledged > 0 && acknowledged < 2000, `some records fit (${acknowledged})`);
  t.is(spool.pending, 2000, 'none lost: the rest waits in memory');
  t.is(spool.stats.dropped, 0);
  // each line on disk is whole: a failed write is cut back
  const onDisk = segments(path.join(dir, 'target')).flatMap((s) => fs.readFileSync(path.join(dir, 'target', s), 'utf8').split('\n').filter(Boolean));
  t.true(onDisk.every((line) => parseLine(line) !== null));
  // the collector comes back: everything is delivered in order, space is freed, writing resumes
  t.deepEqual(await drain(spool), range(0, 2000));
  for (let i = 2000; i < 2010; i++) spool.push(body(i));
  await until(() => spool.stats.spooled >= acknowledged + 10, 'writes resume once space is free', 5000);
  t.deepEqual(await drain(spool), range(2000, 2010));
});

test('a second process cannot open a spool in use; a lock left by a dead process is taken over', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'lock'), `${process.ppid}\n`);
  const busy = new Spool({ dir, maxBytes: 1 << 20, maxMemoryRecords: 10, fsyncMs: 5, spoolAfterMs: 0 });
  await t.throwsAsync(() => busy.open(), { message: /in use by process/ });
  fs.writeFileSync(path.join(dir, 'lock'), '999999999\n');
  await t.notThrowsAsync(() => openSpool(t, { dir }));
});
