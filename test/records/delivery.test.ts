// Call records delivered to real collectors by rtphub started in-process and driven over the ng
// socket (offer + delete of real calls): a small HTTP server of the test (test-collector.ts)
// and a real redis-server. The collector goes down in the middle of a burst of 10,000 records,
// answers 500, or hangs; in every case each record arrives once (the collector de-duplicates
// by `id`), in order per relay, and the detours through the spool are counted. Media ports
// 32000..32319 (below the ephemeral range), ng on an ephemeral port.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { ExecutionContext } from 'ava';
import Redis from 'ioredis';
import type { Forwarder } from '../../src/records/forwarder';
import { redisInstalled } from '../helpers/redis';
import { Rtphub, startRtphub } from '../helpers/rtphub';
import { outOfOrder, ReceivedRecord, TestCollector } from './test-collector';

const SDP = (port: number): string =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;

function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtphub-records-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** rtphub with call records to `target`, each test on its own 64-port slice of 32000..32319. */
function relay(t: ExecutionContext, slot: number, target: string, flags: string[] = []): Promise<Rtphub> {
  const portMin = 32000 + slot * 64;
  return startRtphub(t, portMin, portMin + 63, [
    `--cdr-target=${target}`,
    `--spool-dir=${tempDir(t)}`,
    '--delete-delay=0',
    '--cdr-retry-ms=50',
    '--spool-fsync-ms=10',
    '--ha-node-id=relay-test',
    // call set-up, not records, is the bottleneck of a burst: no coalescing window on commands
    '--coalesce-us=0',
    ...flags,
  ]);
}

/**
 * `count` calls, each an offer and an immediate delete (so a record), `concurrency` at a time;
 * `step(n)` runs after the n-th call ended (to take the collector down or up mid-burst).
 */
async function burst(h: Rtphub, count: number, concurrency: number, step: (n: number) => Promise<void> | void = () => undefined): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const callId = `burst-${i}`;
      const offer = await h.request({ command: 'offer', 'call-id': callId, 'from-tag': `ft-${i}`, sdp: SDP(9000 + (i % 1000) * 2) });
      if (offer.result !== 'ok') throw new Error(`offer failed: ${JSON.stringify(offer)}`);
      const del = await h.request({ command: 'delete', 'call-id': callId, 'from-tag': `ft-${i}` });
      if (del.result !== 'ok') throw new Error(`delete failed: ${JSON.stringify(del)}`);
      ids.push(callId);
      await step(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

const forwarder = (h: Rtphub): Forwarder => h.running.records!.forwarders[0];

function checkArrivals(t: ExecutionContext, records: readonly ReceivedRecord[], ids: readonly string[]): void {
  t.is(records.length, ids.length, 'every record arrived');
  t.deepEqual(new Set(records.map((r) => r.call_id)), new Set(ids), 'one record per call');
  t.is(outOfOrder(records), null, 'in order per relay');
}

test('HTTP collector down in the middle of a burst of 10,000 records, then back: each arrives once, in order', async (t) => {
  const collector = await TestCollector.start(t);
  const h = await relay(t, 0, collector.url);
  const N = 10_000;
  const ids = await burst(h, N, 12, async (n) => {
    if (n === 2500) await collector.down();
    if (n === 7500) await collector.up();
  });
  const f = forwarder(h);
  await until(() => collector.records.length >= N && f.spool.pending === 0, 'every record delivered');
  checkArrivals(t, collector.records, ids);
  t.true(f.stats.failures.unreachable > 0, 'the outage was seen');
  t.true(f.spool.stats.spooled > 0, `records went through the spool (${f.spool.stats.spooled})`);
  t.is(f.spool.stats.dropped, 0);
  t.is(f.stats.delivered, N + collector.duplicates);
  t.log(`spooled ${f.spool.stats.spooled}, duplicates absorbed by the collector ${collector.duplicates}, probes ${collector.probes}`);
  const metrics = await h.running.metrics.render();
  t.regex(metrics, /rtphub_records_written_total 10000/);
  t.regex(metrics, new RegExp(`rtphub_records_delivered_total\\{target="${collector.url}"\\} ${f.stats.delivered}`));
  t.regex(metrics, /rtphub_records_delivery_failures_total\{target="[^"]+",kind="unreachable"\} [1-9]/);
  t.regex(metrics, /rtphub_records_collector_up\{target="[^"]+"\} 1/);
  t.regex(metrics, /rtphub_records_delivery_seconds_count\{target="[^"]+"\} [1-9]/);
});

test('a collector answering 500: the records wait in the spool, counted, and arrive once it answers 2xx', async (t) => {
  const collector = await TestCollector.start(t);
  const h = await relay(t, 1, collector.url);
  collector.mode = 'error';
  const ids = await burst(h, 300, 8);
  const f = forwarder(h);
  await until(() => f.spool.stats.spooled === 300, 'every record spooled (acknowledged)');
  t.false(f.up);
  t.true(f.stats.failures.refused > 0);
  t.is(collector.records.length, 0);
  const metrics = await h.running.metrics.render();
  t.regex(metrics, /rtphub_records_pending\{target="[^"]+",where="spool"\} 300/);
  t.regex(metrics, /rtphub_records_oldest_pending_seconds\{target="[^"]+"\} (0\.\d*[1-9]|[1-9])/);
  t.regex(metrics, /rtphub_records_collector_up\{target="[^"]+"\} 0/);
  collector.mode = 'ok';
  await until(() => collector.records.length >= 300 && f.spool.pending === 0, 'every record delivered');
  checkArrivals(t, collector.records, ids);
  t.is(collector.duplicates, 0, 'a 500 took nothing: nothing is sent twice');
});

test('a collector that hangs: requests time out (--cdr-timeout-ms), the records are spooled and arrive once it answers', async (t) => {
  const collector = await TestCollector.start(t);
  const h = await relay(t, 2, collector.url, ['--cdr-timeout-ms=300']);
  collector.mode = 'hang';
  const started = Date.now();
  const ids = await burst(h, 200, 8);
  t.true(Date.now() - started < 10_000, 'calls are not held up by the hanging collector');
  const f = forwarder(h);
  await until(() => f.stats.failures.timeout > 0 && f.spool.stats.spooled === 200, 'a timeout, every record spooled');
  t.true(collector.hung > 0);
  collector.mode = 'ok';
  await until(() => collector.records.length >= 200 && f.spool.pending === 0, 'every record delivered');
  checkArrivals(t, collector.records, ids);
});

/** A redis-server with an append-only file (fsync always), so a restart on the same port keeps the stream. */
class RedisProcess {
  private child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir], {
      stdio: 'ignore',
    });
    await until(() => reachable(this.port), 'redis-server listening', 5000);
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startRedisProcess(t: ExecutionContext): Promise<RedisProcess> {
  const redis = new RedisProcess(await freePort(), tempDir(t));
  t.teardown(() => {
    redis.signal('SIGCONT');
    return redis.kill();
  });
  await redis.start();
  return redis;
}

async function streamRecords(port: number, stream: string): Promise<ReceivedRecord[]> {
  const client = new Redis(port, '127.0.0.1');
  try {
    const entries = await client.xrange(stream, '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('record') + 1]) as ReceivedRecord);
  } finally {
    client.disconnect();
  }
}

test('records a collector rejects for good (HTTP 400) become dead letters; the rest arrive once, in order, without delay', async (t) => {
  const collector = await TestCollector.start(t);
  const h = await relay(t, 5, collector.url, ['--cdr-batch=16']);
  const poison = ['burst-37', 'burst-150', 'burst-151'];
  for (const id of poison) collector.rejectCallIds.add(id);
  const ids = await burst(h, 300, 8);
  const f = forwarder(h);
  await until(() => f.spool.pending === 0 && f.stats.deadLetters === 3, 'every record delivered or set aside');
  const good = ids.filter((id) => !poison.includes(id));
  checkArrivals(t, collector.records, good);
  t.true(f.up, 'a rejection does not take the collector down');
  t.true(f.stats.failures.rejected >= 2, `batches rejected: ${f.stats.failures.rejected}`);
  t.is(f.stats.failures.refused, 0);
  const file = path.join(f.spool.directory!, 'dead-letters.jsonl');
  const letters = fs.readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { reason: string; record: string });
  t.deepEqual(letters.map((l) => (JSON.parse(l.record) as ReceivedRecord).call_id).sort(), [...poison].sort());
  t.regex(letters[0].reason, /HTTP 400/);
  const metrics = await h.running.metrics.render();
  t.regex(metrics, /rtphub_records_dead_letters_total\{target="[^"]+"\} 3/);
});

test('Redis stream collector killed in the middle of a burst of 10,000 records and restarted: each lands once, in order', async (t) => {
  if (!redisInstalled) {
    t.log('redis-server is not installed: skipped');
    t.pass();
    return;
  }
  const redis = await startRedisProcess(t);
  const h = await relay(t, 3, `redis://127.0.0.1:${redis.port}/0?stream=cdr`, ['--cdr-timeout-ms=500']);
  const N = 10_000;
  const ids = await burst(h, N, 12, async (n) => {
    if (n === 2500) await redis.kill();
    if (n === 7500) await redis.start();
  });
  const f = forwarder(h);
  await until(() => f.spool.pending === 0 && f.up, 'every record delivered', 30_000);
  const records = await streamRecords(redis.port, 'cdr');
  checkArrivals(t, records, ids);
  t.true(f.spool.stats.spooled > 0, `records went through the spool (${f.spool.stats.spooled})`);
  t.true(f.stats.failures.unreachable + f.stats.failures.timeout > 0);
});

test('Redis collector that hangs (SIGSTOP): timeouts, then the late and the re-sent batches land once (de-duplicated by id)', async (t) => {
  if (!redisInstalled) {
    t.log('redis-server is not installed: skipped');
    t.pass();
    return;
  }
  const redis = await startRedisProcess(t);
  const h = await relay(t, 4, `redis://127.0.0.1:${redis.port}/0?stream=cdr`, ['--cdr-timeout-ms=200', '--cdr-batch=20']);
  await burst(h, 50, 4);
  const f = forwarder(h);
  await until(() => f.stats.delivered === 50, 'the first records delivered');
  redis.signal('SIGSTOP');
  const late = await burst(h, 200, 4);
  await until(() => f.stats.failures.timeout > 0 && f.spool.stats.spooled > 0, 'a timeout, records spooled');
  redis.signal('SIGCONT');
  await until(() => f.spool.pending === 0 && f.up, 'every record delivered');
  const records = await streamRecords(redis.port, 'cdr');
  t.is(records.length, 250, 'each record once although a timed-out batch was applied late and sent again');
  t.is(new Set(records.map((r) => r.id)).size, 250);
  t.is(outOfOrder(records), null);
  t.true(late.every((id) => records.some((r) => r.call_id === id)));
});
