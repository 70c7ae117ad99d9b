/**
 * Call-record benchmark: `npx tsx bench/load/records.ts [--quick] [--json]`.
 *
 * 1. Pipeline, one fresh child process per target (HTTP collector in this harness process, on
 *    the other CPU; Redis when redis-server is installed). The child builds real call records
 *    (buildCallDetailRecord) and queues them on a forwarder whose collector is down:
 *    "written" = records/s until all are acknowledged (fsynced in the spool). Then the
 *    collector comes up: "delivered from spool" = records/s until all are taken. Then as many
 *    again with the collector up all along: "delivered direct".
 * 2. The packet path during an outage, in one run: one rtphub process (pinned to CPU 1, the
 *    CLI with --cdr-target and --spool-dir) forwards a fixed RTP load from bench/load's
 *    generator (rtp-load.c, CPU 0: N calls, 50 packets/s each way) while an ng client churns
 *    short calls (offer + delete: one record each) at a fixed rate. Equal phases, collector up
 *    and down alternating (down: records spooled; the next up drains the spool first), so that
 *    drift in the machine's other load hits both alike. Per phase: CPU per forwarded packet of
 *    the data-plane worker thread and of the whole process (scheduler run time per thread from
 *    /proc/PID/task/*\/schedstat ÷ packets forwarded from the relay's metrics), CPU % of the
 *    relay's main thread and of its other threads (libuv's pool does the spool writes),
 *    event-loop delay p99/max (the relay's own prom-client histogram, reset at each scrape),
 *    ng offer+delete p99 as the churn client sees it.
 * The churn's call set-up costs the relay CPU in every phase alike; the records path is the
 * only thing that differs between the phases.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { GuardedChild } from './child';
import { Generator } from './generator';
import { buildNativeTools, NativeTools } from './native-tools';
import { CheckedNgClient } from './ng-client';
import { nodeCommandFor } from './paths';
import { waitForQuiet } from './proc-stats';
import { asText, type BDict } from '../../src/ng/bencode';

interface Options {
  json: boolean;
  calls: number;
  phaseMs: number;
  /** Up/down phase pairs. */
  pairs: number;
  churnPerSecond: number;
  pipelineRecords: number;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    json: argv.includes('--json'),
    calls: 200,
    phaseMs: quick ? 3000 : 5000,
    pairs: quick ? 2 : 3,
    churnPerSecond: 50,
    pipelineRecords: quick ? 20_000 : 100_000,
  };
  const number = (flag: string): number | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : undefined;
  };
  o.calls = number('--calls') ?? o.calls;
  o.phaseMs = (number('--phase') ?? o.phaseMs / 1000) * 1000;
  o.pairs = number('--pairs') ?? o.pairs;
  o.churnPerSecond = number('--churn') ?? o.churnPerSecond;
  o.pipelineRecords = number('--records') ?? o.pipelineRecords;
  return o;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rtphub-bench-${label}-`));
}

// ---- a collector: HTTP, in this process ----------------------------------------------------

/** Takes POSTed batches on a fixed port; de-duplicates by id; can refuse connections (down). */
class BenchCollector {
  readonly ids = new Set<string>();
  private server: http.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/records`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        for (const r of JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ id: string }>) this.ids.add(r.id);
        res.writeHead(204).end();
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---- part 1: pipeline throughput (child side) ----------------------------------------------

interface PipelineConfig {
  target: string;
  records: number;
  spoolDir: string;
}

async function pipelineChild(config: PipelineConfig): Promise<void> {
  const { Call } = await import('../../src/calls/call');
  const { MediaSession } = await import('../../src/calls/media-session');
  const { buildCallDetailRecord } = await import('../../src/records/call-detail-record');
  const { parseTarget } = await import('../../src/records/collector');
  const { Forwarder } = await import('../../src/records/forwarder');
  const { HttpCollector } = await import('../../src/records/http-collector');
  const { RedisCollector } = await import('../../src/records/redis-collector');
  const { Spool } = await import('../../src/records/spool');
  const target = parseTarget(config.target);
  const spool = new Spool({ dir: config.spoolDir, maxBytes: 8 * 2 ** 30, maxMemoryRecords: config.records * 2, fsyncMs: 50, spoolAfterMs: 1000 });
  await spool.open();
  const collector = target.kind === 'redis' ? new RedisCollector(target.url, { timeoutMs: 5000 }) : new HttpCollector(target.url, { timeoutMs: 5000 });
  const forwarder = new Forwarder({ label: target.label, collector, spool, batch: 500, retryMs: 20, timeoutMs: 5000 });
  const lines = createInterface({ input: process.stdin });
  const nextLine = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
  const say = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

  const call = new Call('bench-call-0000000000@example.com');
  call.party('caller-tag').labels.from = 'sip:+15551234567@carrier.example';
  call.party('callee-tag').labels.to = 'sip:+15557654321@carrier.example';
  call.sides.a = 'caller-tag';
  call.sides.b = 'callee-tag';
  call.version = 7;
  const media = new MediaSession(0, 'audio', 'RTP/AVP', { a: 'default', b: 'default' });
  for (const side of [media.sides.a, media.sides.b]) {
    side.codecs = [{ payloadType: 0, name: 'PCMU', clockRate: 8000 }, { payloadType: 101, name: 'telephone-event', clockRate: 8000 }];
    side.learned = { address: '192.0.2.10', port: 40000 };
  }
  call.media.push(media);
  const counters: Record<string, number> = { rtp_packets_in: 90_000, rtp_bytes_in: 15_480_000, rtcp_packets_in: 360, rtcp_bytes_in: 30_000, packets_out: 90_000, bytes_out: 15_480_000, last_ssrc: 0x12345678 };
  const leg = { counters, local: '203.0.113.5:30000', loss: { expected: 90_010, lost: 10 }, jitterMs: 1.25 };
  const totals = { a: leg, b: leg };
  let seq = 0;
  const queue = (n: number): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const endedAt = Date.now();
      const record = buildCallDetailRecord({ call, reason: 'deleted', node: 'bench', boot: 'boot', seq: ++seq, endedAt, answeredAt: endedAt - 60_000, totals: () => totals });
      forwarder.push(JSON.stringify(record), endedAt);
    }
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const cpuMs = (since: NodeJS.CpuUsage): number => {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1000;
  };

  say({ ready: true });
  const n = config.records;
  let cpu = process.cpuUsage();
  let t0 = Date.now();
  const buildMs = queue(n);
  await until(() => spool.stats.spooled === n, 120_000, 'every record spooled');
  say({ phase: 'written', ms: Date.now() - t0, buildMs, cpuMs: cpuMs(cpu), bytes: spool.bytes, failures: forwarder.stats.failures });
  await nextLine(); // the collector is up
  cpu = process.cpuUsage();
  t0 = Date.now();
  await until(() => forwarder.stats.delivered >= n && spool.pending === 0, 120_000, 'the spool delivered');
  say({ phase: 'spool', ms: Date.now() - t0, cpuMs: cpuMs(cpu) });
  cpu = process.cpuUsage();
  t0 = Date.now();
  queue(n);
  await until(() => forwarder.stats.delivered >= 2 * n, 120_000, 'direct delivery');
  say({ phase: 'direct', ms: Date.now() - t0, cpuMs: cpuMs(cpu), spooled: spool.stats.spooled - n });
  await forwarder.close(1000);
  lines.close();
  say({ done: true });
}

interface PipelineResult {
  target: string;
  writtenPerS: number;
  buildUsPerRecord: number;
  spoolBytesPerRecord: number;
  writeCpuUsPerRecord: number;
  spoolPerS: number;
  directPerS: number;
  deliverCpuUsPerRecord: number;
  received: number;
}

async function pipelineTrial(tools: NativeTools, kind: 'http' | 'redis', records: number): Promise<PipelineResult> {
  const port = await freePort();
  const dir = tempDir('pipeline');
  const collector = new BenchCollector(port);
  let redis: ReturnType<typeof spawn> | null = null;
  const url = kind === 'http' ? collector.url : `redis://127.0.0.1:${port}/0?stream=bench`;
  const { command, args } = nodeCommandFor('records');
  const child = GuardedChild.spawn({
    cpu: 1,
    nice: 0,
    maxSeconds: 600,
    guard: tools.guard,
    command,
    args: [...args, '--child=pipeline', JSON.stringify({ target: url, records, spoolDir: dir } satisfies PipelineConfig)],
    label: `pipeline ${kind}`,
  });
  try {
    await child.readJson(30_000, 'ready');
    const written = await child.readJson(180_000, 'written');
    if (kind === 'http') await collector.up();
    else {
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await until(() => reachable(port), 5000, 'redis-server');
    }
    child.write('up\n');
    const spool = await child.readJson(180_000, 'spool delivered');
    const direct = await child.readJson(180_000, 'direct delivered');
    await child.readJson(30_000, 'done');
    let received = collector.ids.size;
    if (kind === 'redis') received = Number(execFileSync('redis-cli', ['-p', String(port), 'XLEN', 'bench']).toString().trim());
    return {
      target: kind,
      writtenPerS: (records * 1000) / Number(written.ms),
      buildUsPerRecord: (Number(written.buildMs) * 1000) / records,
      spoolBytesPerRecord: Number(written.bytes) / records,
      writeCpuUsPerRecord: (Number(written.cpuMs) * 1000) / records,
      spoolPerS: (records * 1000) / Number(spool.ms),
      directPerS: (records * 1000) / Number(direct.ms),
      deliverCpuUsPerRecord: (Number(spool.cpuMs) * 1000) / records,
      received,
    };
  } finally {
    await child.stop(null);
    await collector.down();
    if (redis) {
      redis.kill('SIGKILL');
      await once(redis, 'exit');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

// ---- part 2: the packet path during an outage ------------------------------------------------

interface Snapshot {
  at: number;
  /** Scheduler run time (ns) per thread id. */
  threads: Map<number, number>;
  forwarded: number;
  written: number;
  delivered: number;
  spooled: number;
  loopP99: number;
  loopMax: number;
}

interface PhaseResult {
  phase: string;
  seconds: number;
  pps: number;
  /** The data-plane worker thread's run time per forwarded packet: the packet path. */
  workerNsPerPacket: number;
  /** The whole process (all threads) per forwarded packet. */
  processNsPerPacket: number;
  mainCpuPct: number;
  /** The relay's other threads: libuv's pool (spool writes), V8's helpers. */
  helperCpuPct: number;
  loopP99Ms: number;
  loopMaxMs: number;
  ngP99Ms: number;
  written: number;
  delivered: number;
  spooled: number;
}

/** Scheduler run time (ns) of each thread of a process: exact, unlike utime+stime ticks. */
function threadRunNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(task), Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // a thread that ended
    }
  }
  return out;
}

/** Run time (ns) between two snapshots, per thread. */
function threadDeltas(a: Snapshot, b: Snapshot): Map<number, number> {
  const out = new Map<number, number>();
  for (const [tid, ns] of b.threads) out.set(tid, ns - (a.threads.get(tid) ?? 0));
  return out;
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function value(text: string, pattern: RegExp): number {
  const m = pattern.exec(text);
  return m ? Number(m[1]) : 0;
}

async function snapshot(pid: number, httpPort: number): Promise<Snapshot> {
  const text = await scrape(httpPort);
  return {
    at: Date.now(),
    threads: threadRunNs(pid),
    forwarded: value(text, /^rtphub_engine_total\{counter="packets_forwarded"\} (\d+)/m),
    written: value(text, /^rtphub_records_written_total (\d+)/m),
    delivered: value(text, /^rtphub_records_delivered_total\{[^}]*\} (\d+)/m),
    spooled: value(text, /^rtphub_records_spooled_total\{[^}]*\} (\d+)/m),
    loopP99: value(text, /^rtphub_process_nodejs_eventloop_lag_p99_seconds ([\d.e+-]+)/m),
    loopMax: value(text, /^rtphub_process_nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m),
  };
}

/**
 * One phase's figures. The main thread's id is the process id; the data-plane worker is the
 * busiest other thread (found in the first phase; the others are libuv's file-system pool,
 * which does the spool's writes, and V8's helpers).
 */
function phase(name: string, pid: number, worker: number, a: Snapshot, b: Snapshot, ngLatencies: number[]): PhaseResult {
  const seconds = (b.at - a.at) / 1000;
  const packets = Math.max(1, b.forwarded - a.forwarded);
  const deltas = threadDeltas(a, b);
  const total = [...deltas.values()].reduce((x, y) => x + y, 0);
  const main = deltas.get(pid) ?? 0;
  const workerNs = deltas.get(worker) ?? 0;
  const sorted = [...ngLatencies].sort((x, y) => x - y);
  return {
    phase: name,
    seconds,
    pps: packets / seconds,
    workerNsPerPacket: workerNs / packets,
    processNsPerPacket: total / packets,
    mainCpuPct: (100 * main) / 1e9 / seconds,
    helperCpuPct: (100 * (total - main - workerNs)) / 1e9 / seconds,
    loopP99Ms: b.loopP99 * 1000,
    loopMaxMs: b.loopMax * 1000,
    ngP99Ms: sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] : 0,
    written: b.written - a.written,
    delivered: b.delivered - a.delivered,
    spooled: b.spooled - a.spooled,
  };
}

function sdpFor(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=records', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}

function audioPort(reply: BDict): number {
  const m = /^m=audio (\d+) /m.exec(asText(reply.sdp) ?? '');
  if (!m) throw new Error('ng reply without an m=audio line');
  return Number(m[1]);
}

interface OutageResult {
  phases: PhaseResult[];
  lossPct: number;
  p99Us: number;
  /** CPU of processes other than the relay and the generator over the generator's window (100 = one core). */
  otherProcessesPct: number;
  sendLagP99Us: number;
  received: number;
  written: number;
}

async function outageRun(tools: NativeTools, o: Options): Promise<OutageResult> {
  const [ngPort, httpPort, collectorPort] = [await freePort(), await freePort(), await freePort()];
  const collector = new BenchCollector(collectorPort);
  await collector.up();
  const spoolDir = tempDir('relay-spool');
  const { command, args } = nodeCommandFor('records');
  const relay = GuardedChild.spawn({
    cpu: 1,
    nice: 0,
    maxSeconds: 600,
    guard: tools.guard,
    command,
    args: [
      ...args,
      '--child=relay',
      '--interface=127.0.0.1',
      `--listen-ng=127.0.0.1:${ngPort}`,
      `--listen-http=127.0.0.1:${httpPort}`,
      '--port-min=30000',
      '--port-max=31999',
      '--num-threads=1',
      '--endpoint-learning=off',
      '--delete-delay=0',
      `--cdr-target=${collector.url}`,
      `--spool-dir=${spoolDir}`,
      '--cdr-retry-ms=200',
      '--log-level=3',
    ],
    label: 'rtphub',
  });
  let generator: Generator | null = null;
  const ng = new CheckedNgClient(ngPort);
  try {
    await until(() => ng.request({ command: 'ping' }).then(() => true, () => false), 20_000, 'rtphub ng');
    // the generator's window outlasts the phases (the snapshots take a moment)
    const windowMs = 2 * o.pairs * o.phaseMs + 4000;
    generator = await Generator.start({ binary: tools.generator, guard: tools.guard, cpu: 0, nice: 0, calls: o.calls, warmupMs: 2000, windowMs, drainMs: 300, relayPid: relay.pid });
    const ports = [];
    for (const [i, c] of generator.calls.entries()) {
      const callId = `load-${i}`;
      const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', sdp: sdpFor(c.callerPort) });
      const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdpFor(c.calleePort) });
      ports.push({ a: audioPort(answer), b: audioPort(offer) });
    }
    progress(`outage run: ${o.calls} calls up, RTP starting; churn ${o.churnPerSecond} calls/s`);
    const traffic = generator.run(ports);
    // churn: short calls (offer + delete), each one record
    let churning = true;
    let churned = 0;
    const latencies: number[][] = [];
    let current: number[] = [];
    const churn = (async () => {
      const interval = 1000 / o.churnPerSecond;
      let next = Date.now();
      for (let i = 0; churning && i < 10_000_000; i++) {
        next += interval;
        const started = process.hrtime.bigint();
        await ng.request({ command: 'offer', 'call-id': `churn-${i}`, 'from-tag': 'a', sdp: sdpFor(9) });
        await ng.request({ command: 'delete', 'call-id': `churn-${i}`, 'from-tag': 'a' });
        current.push(Number(process.hrtime.bigint() - started) / 1e6);
        churned++;
        await sleep(Math.max(0, next - Date.now()));
      }
    })();
    await sleep(2000);
    // Alternating phases, so that drift in the machine's other load hits both kinds alike.
    const snapshots = [await snapshot(relay.pid, httpPort)];
    const kinds: Array<'up' | 'down'> = [];
    for (let i = 0; i < 2 * o.pairs; i++) {
      const kind = i % 2 === 0 ? 'up' : 'down';
      kinds.push(kind);
      current = [];
      latencies.push(current);
      if (kind === 'down') await collector.down();
      else await collector.up();
      await sleep(o.phaseMs);
      snapshots.push(await snapshot(relay.pid, httpPort));
    }
    await collector.up();
    churning = false;
    await churn;
    const result = await traffic;
    await until(async () => collector.ids.size >= churned, 30_000, 'every churn record delivered');
    const deltas = threadDeltas(snapshots[0], snapshots[1]);
    deltas.delete(relay.pid);
    const worker = [...deltas.entries()].reduce((best, e) => (e[1] > best[1] ? e : best), [0, -1])[0];
    const names = { up: 'collector up', down: 'collector down' };
    return {
      phases: kinds.map((kind, i) => phase(i > 0 && kind === 'up' ? 'collector back' : names[kind], relay.pid, worker, snapshots[i], snapshots[i + 1], latencies[i])),
      lossPct: result.lossPct,
      p99Us: result.latencyP99Us,
      otherProcessesPct: Math.max(0, (100 * (result.machineBusyNs - result.relayRunNs - result.generatorCpuNs)) / (result.windowS * 1e9)),
      sendLagP99Us: result.sendLagP99Us,
      received: collector.ids.size,
      written: churned,
    };
  } finally {
    ng.close();
    await generator?.stop();
    await relay.stop(null);
    await collector.down();
    fs.rmSync(spoolDir, { recursive: true, force: true });
  }
}

// ---- report -----------------------------------------------------------------------------------

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(c < 10 ? 2 : 0)) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

const mean = (phases: PhaseResult[], key: 'workerNsPerPacket' | 'processNsPerPacket' | 'mainCpuPct'): number =>
  phases.reduce((n, p) => n + p[key], 0) / Math.max(1, phases.length);
const pct = (x: number, base: number): string => `${x >= base ? '+' : ''}${((100 * x) / base - 100).toFixed(1)} %`;

async function harness(o: Options): Promise<void> {
  const tools = buildNativeTools();
  const pipelines: PipelineResult[] = [];
  for (const kind of ['http', 'redis'] as const) {
    await waitForQuiet(10, 20_000);
    if (kind === 'redis' && !fs.existsSync('/usr/bin/redis-server')) {
      progress('pipeline redis: redis-server not installed, skipped');
      continue;
    }
    progress(`pipeline ${kind}: ${o.pipelineRecords} records`);
    pipelines.push(await pipelineTrial(tools, kind, o.pipelineRecords));
  }
  const busy = await waitForQuiet(10, 30_000);
  if (busy >= 10) progress(`the machine is ${busy.toFixed(0)} % busy with other work: figures will be disturbed`);
  const outage = await outageRun(tools, o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ options: o, pipelines, outage }, null, 2)}\n`);
    return;
  }
  const up = outage.phases.filter((p) => p.phase !== 'collector down');
  const down = outage.phases.filter((p) => p.phase === 'collector down');
  const out = [
    `# Call records (${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism()}, node ${process.version})`,
    '',
    `Pipeline: ${o.pipelineRecords} records per phase, one child process per target (CPU 1), collector in the harness (CPU 0).`,
    table(
      ['target', 'written rec/s (fsynced)', 'build us/rec', 'spool B/rec', 'write CPU us/rec', 'from spool rec/s', 'direct rec/s', 'deliver CPU us/rec', 'received'],
      pipelines.map((p) => [p.target, p.writtenPerS, p.buildUsPerRecord, p.spoolBytesPerRecord, p.writeCpuUsPerRecord, p.spoolPerS, p.directPerS, p.deliverCpuUsPerRecord, p.received]),
    ),
    '',
    `Packet path: ${o.calls} calls of RTP (${o.calls * 100} packets/s in), ${o.churnPerSecond} short calls/s (one record each), ${o.phaseMs / 1000} s per phase, up and down alternating.`,
    table(
      ['phase', 'pps fwd', 'worker ns/pkt', 'process ns/pkt', 'main CPU %', 'helper CPU %', 'loop p99 ms', 'loop max ms', 'ng p99 ms', 'written', 'delivered', 'spooled'],
      outage.phases.map((p) => [p.phase, p.pps, p.workerNsPerPacket, p.processNsPerPacket, p.mainCpuPct, p.helperCpuPct, p.loopP99Ms, p.loopMaxMs, p.ngP99Ms, p.written, p.delivered, p.spooled]),
    ),
    '',
    `collector down vs up (mean over the phases), per forwarded packet: worker ${pct(mean(down, 'workerNsPerPacket'), mean(up, 'workerNsPerPacket'))},` +
      ` whole process ${pct(mean(down, 'processNsPerPacket'), mean(up, 'processNsPerPacket'))}, relay main thread CPU ${pct(mean(down, 'mainCpuPct'), mean(up, 'mainCpuPct'))};` +
      ` generator loss ${outage.lossPct.toFixed(3)} %, one-way p99 ${outage.p99Us} us, send lag p99 ${outage.sendLagP99Us} us;` +
      ` other processes ${outage.otherProcessesPct.toFixed(0)} % of a core (the harness's ng client and collector included);` +
      ` records ${outage.written} written, ${outage.received} received once.`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

async function entry(): Promise<void> {
  const mode = process.argv[2];
  if (mode === '--child=relay') {
    const { main } = await import('../../src/cli/main');
    main(process.argv.slice(3));
    return;
  }
  if (mode === '--child=pipeline') {
    await pipelineChild(JSON.parse(process.argv[3]) as PipelineConfig);
    process.exit(0);
  }
  const cleanup = (): void => GuardedChild.killAll();
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    await harness(parseOptions(process.argv.slice(2)));
  } finally {
    cleanup();
  }
}

void entry().catch((error: Error) => {
  process.stderr.write(`records bench: ${error.stack ?? error.message}\n`);
  GuardedChild.killAll();
  process.exit(1);
});
