/**
 * Command-line options of `npm run bench` (packet-rate). Defaults keep a full run near
 * ten minutes on a 2-core machine; `--quick` shortens windows and steps for a smoke run.
 */

export interface BenchOptions {
  warmupMs: number;
  windowMs: number;
  rampWarmupMs: number;
  rampWindowMs: number;
  drainMs: number;
  fixedLoads: number[];
  rampSteps: number[];
  /** Substrings selecting relays by name (empty: all). */
  relayFilter: string[];
  maxLossPct: number;
  maxP99Us: number;
  /** Send lag p99 above which a step is the generator's limit, not the relay's. */
  maxSendLagUs: number;
  /** CPU use by unrelated processes (% of one core) that makes a trial disturbed. */
  maxOtherCpuPct: number;
  /** Nice value for the generator and the relays (0: unchanged). */
  nice: number;
  /** Longest wait before a trial for the machine to be quiet (0: do not wait). */
  quietWaitMs: number;
  /** Reruns of a trial during which the generator fell behind its schedule. */
  retries: number;
  /** Ramps take no new step after this long since the start. */
  budgetMs: number;
  /** Coalescing window of the extra rtphub io_uring variant, against the engine's default in the others. */
  coalesceUs: number;
  json: boolean;
}

const HELP = `usage: npm run bench -- [options]
  --quick               short windows, fewer steps (about 3 minutes)
  --json                print the results as JSON on stdout (progress goes to stderr)
  --warmup S            warm-up before each fixed-load window (default 2)
  --window S            fixed-load measurement window (default 8)
  --ramp-window S       ramp-step measurement window (default 5, after --warmup)
  --loads N,N           fixed loads in calls (default 300,600)
  --ramp N,N,...        ramp steps in calls (default 400,600,800,1000,1500,2000,3000,4000)
  --no-ramp             fixed loads only
  --netns               namespace mode (root): rtphub af_xdp, io_uring, epoll and rtpengine over real
                        veths, CPU per packet of the whole path; takes only --loads (default 500,1500),
                        --window S (3), --warmup S (1), --relays, --xdp-frames N (32768) and
                        --xdp-ring-size N (8192); under a minute
  --relays A,B          only relays whose name contains one of these (e.g. naive,rtpengine,epoll)
  --max-loss PCT        ramp pass criterion on loss (default 0.1)
  --max-p99 MS          ramp pass criterion on p99 one-way latency (default 5)
  --coalesce-us N       coalescing window of the extra "rtphub io_uring coalesce=N" relay
                        (default 200; the other rtphub relays use the engine's default)
  --retries N           rerun a trial whose generator fell behind, keeping the better run (default 1)
  --quiet-wait S        before each trial wait up to S seconds for the CPUs to be < 10 % busy
                        (default 20; 0: never wait)
  --budget MIN          take no new ramp step after MIN minutes in all (default 9; 4 with --quick)
  --nice N              run generator and relays at this nice value, e.g. -10 on a machine
                        shared with other work (default 0: unchanged)
`;

export function parseOptions(argv: string[]): BenchOptions {
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

function defaults(quick: boolean): BenchOptions {
  return {
    warmupMs: quick ? 1000 : 2000,
    windowMs: quick ? 3000 : 8000,
    rampWarmupMs: quick ? 1000 : 2000,
    rampWindowMs: quick ? 2000 : 5000,
    drainMs: 300,
    fixedLoads: [300, 600],
    rampSteps: quick ? [400, 800, 1200] : [400, 600, 800, 1000, 1500, 2000, 3000, 4000],
    relayFilter: [],
    maxLossPct: 0.1,
    maxP99Us: 5000,
    maxSendLagUs: 1000,
    maxOtherCpuPct: 25,
    nice: 0,
    coalesceUs: 200,
    retries: 1,
    quietWaitMs: 20_000,
    budgetMs: (quick ? 4 : 9) * 60_000,
    json: false,
  };
}

function applyFlag(o: BenchOptions, flag: string, value: () => string): void {
  switch (flag) {
    case '--quick': return;
    case '--json': o.json = true; return;
    case '--warmup': o.warmupMs = o.rampWarmupMs = seconds(flag, value()); return;
    case '--window': o.windowMs = seconds(flag, value()); return;
    case '--ramp-window': o.rampWindowMs = seconds(flag, value()); return;
    case '--loads': o.fixedLoads = counts(flag, value()); return;
    case '--ramp': o.rampSteps = counts(flag, value()); return;
    case '--no-ramp': o.rampSteps = []; return;
    case '--relays': o.relayFilter = value().split(',').filter(Boolean); return;
    case '--max-loss': o.maxLossPct = positive(flag, value()); return;
    case '--max-p99': o.maxP99Us = positive(flag, value()) * 1000; return;
    case '--nice': o.nice = niceValue(flag, value()); return;
    case '--retries': o.retries = wholeNumber(flag, value()); return;
    case '--quiet-wait': o.quietWaitMs = wholeNumber(flag, value()) * 1000; return;
    case '--budget': o.budgetMs = Math.round(positive(flag, value()) * 60_000); return;
    case '--coalesce-us': o.coalesceUs = wholeNumber(flag, value()); return;
    case '--help': case '-h': process.stdout.write(HELP); process.exit(0); return;
    default: fail(`unknown option ${flag}`);
  }
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`${flag}: expected a positive number, got ${text}`);
  return n;
}

function niceValue(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < -20 || n > 19) fail(`${flag}: expected an integer from -20 to 19, got ${text}`);
  return n;
}

function wholeNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`${flag}: expected a whole number, got ${text}`);
  return n;
}

function seconds(flag: string, text: string): number {
  return Math.round(positive(flag, text) * 1000);
}

function counts(flag: string, text: string): number[] {
  const list = text.split(',').filter(Boolean).map((t) => positive(flag, t));
  if (list.some((n) => !Number.isInteger(n) || n > 9000)) fail(`${flag}: call counts are integers up to 9000`);
  return list;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${HELP}`);
  process.exit(2);
}
