/**
 * Command-line options of `npm run bench:control`. The defaults take about four minutes on
 * a 2-core machine (more when trials are retried); `--quick` shortens the windows for a
 * smoke run.
 */
import type { ClientKind } from './load-client';
import type { RelayFamily } from './relays';

export interface ControlOptions {
  warmupMs: number;
  windowMs: number;
  /** Live-call counts at which rtphub and rtpengine are both measured. */
  compareLive: number[];
  /** Live-call counts at which rtphub alone is measured (beyond rtpengine's descriptor limit). */
  hubLive: number[];
  concurrency: number;
  setupConcurrency: number;
  relays: RelayFamily[];
  client: ClientKind;
  repeats: number;
  /** Run one more, profiled, rtphub trial and report its hot spots. */
  profile: boolean;
  nice: number;
  /** Reruns of a trial whose window other processes disturbed, keeping the least disturbed run. */
  retries: number;
  /** Longest wait before each run for the machine to be quiet. */
  quietWaitMs: number;
  timeoutMs: number;
  attempts: number;
  json: boolean;
}

const HELP = `usage: npm run bench:control -- [options]
  --quick                 3 s warm-up and 3 s windows, no 0-call baseline (about 1.5 minutes)
  --json                  print one JSON object as the last line of stdout (progress goes to stderr)
  --window S              measurement window per trial (default 10)
  --warmup S              cycles run before the window, not measured (default 15: rtphub's JIT
                          needs about that long to reach steady state)
  --live N,N              live calls when rtphub and rtpengine are compared (default 0,4000;
                          rtpengine holds 4 descriptors per call, so about 4,500 fit in 20,000)
  --hub-live N,N          live calls for rtphub alone (default 10000; "none" to skip)
  --concurrency N         offer+answer+delete cycles in flight (default 64)
  --setup-concurrency N   calls set up at once before the window (default 64)
  --relays A,B            rtphub, rtpengine, ng-echo (default all; ng-echo is a C stub answering
                          at once: the generator's own ceiling, measured once with no live calls)
  --client KIND           template (lean, default) or project (src/ng/client.ts NgClient)
  --repeats N             trials per relay and live count, interleaved (default 1)
  --profile               one more rtphub trial under node --cpu-prof at the largest compared
                          live count; prints the hot spots, saves build/bench/control-rate.cpuprofile
  --nice N                run relays and generator at this nice value (e.g. -10 on a shared machine)
  --retries N             rerun a trial during whose window other processes used more than 25 %
                          of a core, keeping the least disturbed run (default 2)
  --quiet-wait S          before every run, wait up to S seconds for a 2 s sample in which the
                          machine is that quiet (default 60; 0: do not wait)
  --timeout MS            per-attempt reply timeout (default 1000); --attempts N (default 3)
`;

function defaults(quick: boolean): ControlOptions {
  return {
    warmupMs: quick ? 3000 : 15_000,
    windowMs: quick ? 3000 : 10_000,
    compareLive: quick ? [4000] : [0, 4000],
    hubLive: [10_000],
    concurrency: 64,
    setupConcurrency: 64,
    relays: ['ng-echo', 'rtphub', 'rtpengine'],
    client: 'template',
    repeats: 1,
    profile: false,
    nice: 0,
    retries: 2,
    quietWaitMs: 60_000,
    timeoutMs: 1000,
    attempts: 3,
    json: false,
  };
}

export function parseOptions(argv: string[]): ControlOptions {
  const options = defaults(argv.includes('--quick'));
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    applyFlag(options, flag, value);
  }
  return options;
}

function applyFlag(o: ControlOptions, flag: string, value: () => string): void {
  switch (flag) {
    case '--quick': return;
    case '--json': o.json = true; return;
    case '--window': o.windowMs = seconds(flag, value()); return;
    case '--warmup': o.warmupMs = seconds(flag, value()); return;
    case '--live': o.compareLive = counts(flag, value()); return;
    case '--hub-live': o.hubLive = counts(flag, value()); return;
    case '--concurrency': o.concurrency = whole(flag, value(), 1, 1024); return;
    case '--setup-concurrency': o.setupConcurrency = whole(flag, value(), 1, 1024); return;
    case '--relays': o.relays = relayList(value()); return;
    case '--client': o.client = clientKind(value()); return;
    case '--repeats': o.repeats = whole(flag, value(), 1, 20); return;
    case '--profile': o.profile = true; return;
    case '--nice': o.nice = whole(flag, value(), -20, 19); return;
    case '--retries': o.retries = whole(flag, value(), 0, 5); return;
    case '--quiet-wait': o.quietWaitMs = whole(flag, value(), 0, 3600) * 1000; return;
    case '--timeout': o.timeoutMs = whole(flag, value(), 10, 10_000); return;
    case '--attempts': o.attempts = whole(flag, value(), 1, 10); return;
    case '--help': case '-h': process.stdout.write(HELP); process.exit(0); return;
    default: fail(`unknown option ${flag}`);
  }
}

function whole(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${flag}: expected an integer from ${min} to ${max}, got ${text}`);
  return n;
}

function seconds(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > 600) fail(`${flag}: expected seconds in (0, 600], got ${text}`);
  return Math.round(n * 1000);
}

function counts(flag: string, text: string): number[] {
  if (text === 'none' || text === '') return [];
  return text.split(',').filter(Boolean).map((t) => whole(flag, t, 0, 100_000));
}

function relayList(text: string): RelayFamily[] {
  const list = text.split(',').filter(Boolean);
  const bad = list.filter((r) => r !== 'rtphub' && r !== 'rtpengine' && r !== 'ng-echo');
  if (bad.length > 0 || list.length === 0) fail(`--relays: rtphub, rtpengine and/or ng-echo, got ${text}`);
  return list as RelayFamily[];
}

function clientKind(text: string): ClientKind {
  if (text !== 'template' && text !== 'project') fail(`--client: template or project, got ${text}`);
  return text;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${HELP}`);
  process.exit(2);
}
