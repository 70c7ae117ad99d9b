/**
 * `npm run bench:failover`: what a hot-standby takeover costs the calls. Per trial (a fresh lab:
 * network namespaces, two rtphub processes, RTP endpoints; bench/load/failover/lab.ts):
 *
 *   1. sets up N calls over ng at `--rate` setups/s and reads the active relay's replication lag
 *      (`ha status`: record written -> applied by the standby -> acknowledged);
 *   2. waits for the standby to hold every call, and takes its memory per call (RSS with the
 *      calls - RSS before them) / N;
 *   3. measures a second of media with no failure (the baseline gap: jitter of this machine);
 *   4. SIGKILLs the active relay and measures, per call, the longest silence at the receiving
 *      endpoints, the calls lost (no packet in one direction in a window after the takeover
 *      settled), and the standby's time from the last keep-alive heard to the shared address
 *      announced (HaNode.stats.lastTakeoverMs).
 *
 * A 2-core machine cannot carry 50 packets/s each way for thousands of calls through veth pairs
 * and a bridge, so the first `--dense` calls (default 200) send every 20 ms and give the gap
 * figures; the others send every `--sparse-ms` and count towards calls lost (their gap is
 * reported apart: it includes up to one of their periods). Every call is replicated, held on
 * standby and taken over.
 *
 *   npm run build && npm run bench:failover                 # 1,000 and 10,000 calls
 *   npm run bench:failover -- --calls 1000 --json           # JSON as the last line
 *   npx tsx bench/load/failover.ts --calls 300              # from source
 */
import { parseArgs } from 'node:util';
import { FailoverLab, lostCalls, percentile, type HaStatus } from './failover/lab';

interface Options {
  calls: number[];
  rate: number;
  dense: number;
  sparseMs: number | null;
  json: boolean;
  keepLogs: string | null;
  nice: number;
  keepaliveMs: number;
  missed: number;
}

export interface TrialResult {
  calls: number;
  dense_calls: number;
  sparse_period_ms: number;
  lost_calls: number;
  gap_ms: { p50: number; p99: number; max: number };
  sparse_gap_ms: { p50: number; p99: number; max: number };
  baseline_gap_ms: { p50: number; p99: number; max: number };
  takeover_ms: number;
  takeover_phases_ms: unknown;
  replication_lag_ms: { p50: number; p99: number; samples: number };
  /** The standby's side of it: record written on the active relay -> read by the standby (one clock here). */
  replication_read_lag_ms: { p50: number; p99: number; samples: number };
  setup_rate_per_s: number;
  setup_ms: { p50: number; p99: number };
  standby_bytes_per_call: number;
  endpoint_send_skips: number;
  /** Before the kill: the active relay's longest pause between keep-alives sent, the standby's longest silence heard. */
  keepalive_max_gap_ms: { sent: number; heard: number };
  /** Event-loop delay (ms) of the active relay after the setups and of the standby after the takeover. */
  event_loop_delay_ms: { active_p99: number; active_max: number; standby_p99: number; standby_max: number };
}

const HELP = `usage: npm run bench:failover -- [options]
  --calls N,N       calls per trial (default 1000,10000)
  --rate N          call setups per second (default 1000)
  --dense N         calls sending every 20 ms, measured for the gap (default 200)
  --sparse-ms MS    packet period of the other calls (default: from the count, <= 10k packets/s)
  --logs DIR        keep the relays' logs in DIR
  --keepalive-ms MS keep-alive interval of the relays (default 20, rtphub's)
  --missed N        missed keep-alives before a takeover (default 3, rtphub's)
  --nice N          run relays, endpoints and drivers at this nice value (default -10, as the other
                    load benchmarks: 20 ms keep-alives starved of CPU look like a dead relay)
  --json            print the results as JSON on the last line of stdout`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      calls: { type: 'string', default: '1000,10000' },
      rate: { type: 'string', default: '1000' },
      dense: { type: 'string', default: '200' },
      'sparse-ms': { type: 'string' },
      logs: { type: 'string' },
      nice: { type: 'string', default: '-10' },
      'keepalive-ms': { type: 'string', default: '20' },
      missed: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const calls = values.calls.split(',').map(Number);
  if (calls.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000)) throw new Error('--calls takes counts between 1 and 20000');
  return {
    calls,
    rate: Number(values.rate),
    dense: Number(values.dense),
    sparseMs: values['sparse-ms'] ? Number(values['sparse-ms']) : null,
    json: values.json,
    keepLogs: values.logs ?? null,
    nice: Number(values.nice),
    keepaliveMs: Number(values['keepalive-ms']),
    missed: Number(values.missed),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function stats(values: number[]): { p50: number; p99: number; max: number } {
  const round = (v: number): number => Math.round(v * 10) / 10;
  return { p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(values.length ? Math.max(...values) : 0) };
}

function keepalives(s: HaStatus): Record<string, number> {
  return (s.keepalives as Record<string, number> | undefined) ?? {};
}

/** A relay's event-loop delay from `ha status` (reported in microseconds), in ms. */
function loopDelay(s: HaStatus): { p99: number; max: number } {
  const us = (s['event loop delay us'] as Record<string, number> | undefined) ?? {};
  return { p99: Math.round((us.p99 ?? -1000) / 100) / 10, max: Math.round((us.max ?? -1000) / 100) / 10 };
}

async function trial(calls: number, o: Options, progress: (m: string) => void): Promise<TrialResult> {
  const dense = Math.min(calls, o.dense);
  // Keep the sparse calls under about 10,000 packets/s in total (both directions).
  const sparseMs = o.sparseMs ?? Math.max(200, Math.ceil(((calls - dense) * 2 * 1000) / 10_000 / 100) * 100);
  const lab = await FailoverLab.create({
    calls,
    denseCalls: dense,
    sparsePeriodUs: sparseMs * 1000,
    logDir: o.keepLogs ?? undefined,
    nice: o.nice,
    keepaliveMs: o.keepaliveMs,
    missed: o.missed,
    log: progress,
  });
  try {
    const rss0 = lab.rssKb('b');
    progress(`setting up ${calls} calls at ${o.rate}/s`);
    const setup = await lab.setupCalls(calls, o.rate);
    const active = await lab.ha('a');
    const lag = active.replication ?? {};
    progress(`set up in ${setup.ms} ms; replication lag p50 ${lag['lag p50 ms']} ms, p99 ${lag['lag p99 ms']} ms`);
    const digest = active.calls?.digest;
    await lab.waitFor(async () => (await lab.ha('b')).calls?.digest === digest, 'the standby holding every call', 120_000);
    await sleep(Math.max(2000, 2 * sparseMs));
    const rss1 = lab.rssKb('b');
    const [beforeA, beforeB] = [await lab.ha('a'), await lab.ha('b')];
    const readLag = beforeB.replication ?? {};
    await lab.mark();
    await sleep(Math.max(1000, sparseMs + 200));
    const baseline = await lab.measure();
    progress('SIGKILL of the active relay');
    await lab.mark();
    await lab.killRelay('a');
    await lab.waitFor(async () => (await lab.ha('b')).role === 'active', 'the standby taking over', 10_000);
    await sleep(Math.max(2000, 2 * sparseMs + 500));
    const after = await lab.measure();
    // Lost: a call without a packet in one direction during a window once the takeover settled.
    await lab.mark();
    await sleep(Math.max(1000, 2 * sparseMs + 500));
    const settled = await lab.measure();
    const standby: HaStatus = await lab.ha('b');
    const lost = lostCalls(settled);
    if (lost.length > 0) {
      progress(`calls lost: ${lost.length}, e.g. ${lost.slice(0, 10).map((i) => lab.callIds[i]).join(', ')}`);
      const sample = await lab.ng('b', { command: 'query', 'call-id': lab.callIds[lost[0]] });
      progress(`${lab.callIds[lost[0]]} on the new active relay: ${JSON.stringify(sample).slice(0, 1500)}`);
    }
    const result: TrialResult = {
      calls,
      dense_calls: dense,
      sparse_period_ms: sparseMs,
      lost_calls: lost.length,
      gap_ms: stats(after.gapMs.slice(0, dense)),
      sparse_gap_ms: stats(after.gapMs.slice(dense)),
      baseline_gap_ms: stats(baseline.gapMs.slice(0, dense)),
      takeover_ms: standby['last takeover ms'] ?? -1,
      takeover_phases_ms: standby['last takeover phases ms'] ?? null,
      replication_lag_ms: { p50: lag['lag p50 ms'] ?? -1, p99: lag['lag p99 ms'] ?? -1, samples: lag['lag samples'] ?? 0 },
      replication_read_lag_ms: { p50: readLag['read lag p50 ms'] ?? -1, p99: readLag['read lag p99 ms'] ?? -1, samples: readLag['read lag samples'] ?? 0 },
      setup_rate_per_s: Math.round((calls * 1000) / Math.max(1, setup.ms)),
      setup_ms: setup.setupMs as { p50: number; p99: number },
      standby_bytes_per_call: Math.round(((rss1 - rss0) * 1024) / calls),
      endpoint_send_skips: after.behind,
      keepalive_max_gap_ms: { sent: keepalives(beforeA)['max send gap ms'] ?? -1, heard: keepalives(beforeB)['max heard gap ms'] ?? -1 },
      event_loop_delay_ms: {
        active_p99: loopDelay(beforeA).p99,
        active_max: loopDelay(beforeA).max,
        standby_p99: loopDelay(standby).p99,
        standby_max: loopDelay(standby).max,
      },
    };
    if (standby.calls?.own !== calls) progress(`the new active relay owns ${standby.calls?.own} of ${calls} calls`);
    progress(`takeover phases (ms after the last keep-alive): ${JSON.stringify(result.takeover_phases_ms)}`);
    return result;
  } finally {
    await lab.destroy();
  }
}

function table(results: TrialResult[]): string {
  const rows = [
    ['calls', 'lost', 'gap p50/p99/max ms', 'sparse gap max ms', 'baseline gap p99 ms', 'takeover ms', 'repl lag p50/p99 ms', 'setups/s', 'standby B/call'],
    ...results.map((r) => [
      `${r.calls} (${r.dense_calls} at 20 ms, rest at ${r.sparse_period_ms} ms)`,
      String(r.lost_calls),
      `${r.gap_ms.p50}/${r.gap_ms.p99}/${r.gap_ms.max}`,
      String(r.sparse_gap_ms.max),
      String(r.baseline_gap_ms.p99),
      String(r.takeover_ms),
      `${r.replication_lag_ms.p50}/${r.replication_lag_ms.p99}`,
      String(r.setup_rate_per_s),
      String(r.standby_bytes_per_call),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const progress = (m: string): void => void process.stderr.write(`[failover] ${m}\n`);
  const results: TrialResult[] = [];
  for (const calls of o.calls) results.push(await trial(calls, o, progress));
  const out = o.json ? process.stderr : process.stdout;
  out.write(`\n${table(results)}\n\n`);
  out.write('gap: longest silence per call at the receiving endpoints (either direction) across a SIGKILL of the active relay;\n');
  out.write('takeover: last keep-alive heard -> shared address announced; lag: record written -> acknowledged by the standby.\n');
  if (o.json) {
    const last = results[results.length - 1];
    process.stdout.write(`${JSON.stringify({ ...last, trials: results })}\n`);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:failover: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
