/**
 * `npm run bench`: the packet-rate benchmark. Emulates N two-way G.711 calls with a
 * native generator (pinned to CPU 0) through each relay under test (a fresh process per
 * trial, pinned to CPU 1): rtphub with each backend, a naive C epoll relay and Debian's
 * rtpengine. Reports packets/s, loss, one-way latency, relay CPU per forwarded packet
 * and relay memory per call at fixed loads, then ramps each relay to its most calls
 * within the loss/latency limits. A relay that cannot run is reported and skipped.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, release } from 'node:os';
import { GuardedChild } from './child';
import { buildNativeTools, type NativeTools } from './native-tools';
import { parseOptions, type BenchOptions } from './options';
import { runPlan } from './plan';
import { oneMinuteLoad } from './proc-stats';
import { NaiveRelay } from './relays/naive';
import type { LaunchSettings, RelayUnderTest } from './relays/relay';
import { RtpengineRelay, rtpengineArgs } from './relays/rtpengine';
import { RtphubRelay } from './relays/rtphub';
import { runNetnsBench } from './netns';
import { renderReport, type RunContext } from './report';

const GENERATOR_CPU = 0;
const RELAY_CPU = 1;
/** Longest a relay process may live; a trial takes well under a minute. */
const RELAY_MAX_SECONDS = 300;
/** Media ports for rtphub and rtpengine: below the kernel's ephemeral range (32768+), which the generator and naive relay use. */
const PORT_MIN = 12000;
const PORT_MAX = 31999;

function relaysUnderTest(tools: NativeTools, launch: LaunchSettings, coalesceUs: number): RelayUnderTest[] {
  return [
    new RtphubRelay({ backend: 'io_uring' }, launch),
    new RtphubRelay({ backend: 'epoll' }, launch),
    new RtphubRelay({ backend: 'io_uring', coalesceUs }, launch),
    new NaiveRelay(tools.naiveRelay, launch),
    new RtpengineRelay(launch),
  ];
}

function selectRelays(relays: RelayUnderTest[], filter: string[]): RelayUnderTest[] {
  if (filter.length === 0) return relays;
  return relays.filter((r) => filter.some((f) => r.name.includes(f)));
}

/** Pins every thread of this harness to the generator's CPU, away from the relay's. */
function pinHarness(cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

function rtpengineVersion(): string {
  try {
    // rtpengine prints its version on stderr
    const version = execFileSync('sh', ['-c', '/usr/bin/rtpengine --version 2>&1'], { encoding: 'utf8' });
    return version.trim().replace(/^Version:\s*/, '');
  } catch {
    return 'not installed';
  }
}

function runContext(launch: LaunchSettings, relayCpu: number): RunContext {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  return {
    machine: `${cpus().length} CPUs (${model}), Linux ${release()}, Node ${process.version}`,
    pinning: [
      `generator (native, build/bench/rtp-load) on CPU ${GENERATOR_CPU} with taskset -c ${GENERATOR_CPU}`,
      `each relay process on CPU ${relayCpu} with taskset -c ${relayCpu}; rtphub runs with threads: 1`,
      `this harness on CPU ${GENERATOR_CPU} (taskset -a -p); it sleeps during windows`,
      launch.nice === 0 ? 'priority: unchanged (nice 0)' : `priority: generator and relays at nice ${launch.nice}`,
    ],
    loadAverage: oneMinuteLoad(),
    notes: [
      `rtpengine: ${rtpengineVersion()}, run as: rtpengine ${rtpengineArgs(0, launch).join(' ').replace('127.0.0.1:0', '127.0.0.1:<free port>')}`,
    ],
  };
}

async function main(): Promise<void> {
  const options: BenchOptions = parseOptions(process.argv.slice(2));
  const progress = (message: string): boolean => process.stderr.write(`${message}\n`);
  const relayCpu = availableParallelism() > 1 ? RELAY_CPU : GENERATOR_CPU;
  pinHarness(GENERATOR_CPU);
  const tools = buildNativeTools();
  const launch: LaunchSettings = {
    guard: tools.guard,
    relayCpu,
    nice: options.nice,
    maxSeconds: RELAY_MAX_SECONDS,
    portMin: PORT_MIN,
    portMax: PORT_MAX,
  };
  const context = runContext(launch, relayCpu);
  const relays = selectRelays(relaysUnderTest(tools, launch, options.coalesceUs), options.relayFilter);
  const results = await runPlan(
    relays,
    options,
    {
      tools,
      generatorCpu: GENERATOR_CPU,
      nice: options.nice,
      timing: { warmupMs: options.warmupMs, windowMs: options.windowMs, drainMs: options.drainMs },
      maxSendLagUs: options.maxSendLagUs,
      maxOtherCpuPct: options.maxOtherCpuPct,
    },
    (message) => void progress(message),
  );
  if (options.json) process.stdout.write(`${JSON.stringify({ context, options, results }, null, 2)}\n`);
  else process.stdout.write(renderReport(context, options, results));
}

process.on('exit', () => GuardedChild.killAll());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    GuardedChild.killAll();
    process.exit(130);
  });
}

const run = process.argv.includes('--netns') ? runNetnsBench(process.argv.slice(2).filter((a) => a !== '--netns')) : main();
run.catch((err: unknown) => {
  process.stderr.write(`packet-rate: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
