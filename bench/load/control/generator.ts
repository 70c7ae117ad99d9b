/**
 * The control-rate load generator, a child process pinned to its own CPU. It sets up the
 * live calls (offer + answer each, not measured), then keeps `concurrency` cycles in
 * flight, each an offer → answer → delete on a new call-id, for a warm-up and a window.
 * Over the window it records every command's latency, the completed cycles, and the CPU
 * time of the relay (read from /proc at the window edges), of itself and of the rest of
 * the machine. It prints one JSON line, {"result":…} or {"error":…}, and exits.
 *
 * usage: generator --port N --relayPid N --live N --setupConcurrency N --concurrency N
 *                  --warmupMs N --windowMs N --client template|project --timeoutMs N --attempts N
 */
import { performance } from 'node:perf_hooks';
import { LatencySamples } from './latency';
import { openClient, type CommandReply, type LoadClient } from './load-client';
import { settingsFromArgs, type CommandResult, type LoadResult, type LoadSettings } from './load-protocol';
import { clockTicksPerSecond, machineBusyTicks, processCpuTicks, processRunNs, threadCpuTicks } from './proc';
import { COMMANDS, type CommandName } from './requests';

/** Safety bound on the cycles of one run, far above any rate this machine reaches in a window. */
const MAX_CYCLES = 20_000_000;
const MAX_ERROR_SAMPLES = 10;

interface Edge {
  ns: bigint;
  relayTicks: number | null;
  relayRunNs: number | null;
  relayThreads: Map<number, { name: string; ticks: number }>;
  machineTicks: number | null;
  own: NodeJS.CpuUsage;
}

function edge(relayPid: number): Edge {
  return {
    ns: process.hrtime.bigint(),
    relayTicks: processCpuTicks(relayPid),
    relayRunNs: processRunNs(relayPid),
    relayThreads: threadCpuTicks(relayPid),
    machineTicks: machineBusyTicks(),
    own: process.cpuUsage(),
  };
}

/** What the window saw; replies outside it are not counted. */
class Window {
  recording = false;
  cycles = 0;
  failedCycles = 0;
  readonly samples = { offer: new LatencySamples(), answer: new LatencySamples(), delete: new LatencySamples() };
  readonly errors = { offer: 0, answer: 0, delete: 0 };
  readonly timeouts = { offer: 0, answer: 0, delete: 0 };
  readonly errorSamples: Record<string, number> = {};

  reply(command: CommandName, ms: number, reply: CommandReply): void {
    if (!this.recording) return;
    if (reply.timedOut) this.timeouts[command]++;
    else this.samples[command].add(ms);
    if (reply.ok) return;
    this.errors[command]++;
    const key = `${command}: ${reply.error ?? 'error'}`;
    if (key in this.errorSamples || Object.keys(this.errorSamples).length < MAX_ERROR_SAMPLES) {
      this.errorSamples[key] = (this.errorSamples[key] ?? 0) + 1;
    }
  }

  cycleDone(ok: boolean): void {
    if (!this.recording) return;
    if (ok) this.cycles++;
    else this.failedCycles++;
  }

  commandResult(command: CommandName): CommandResult {
    return { ...this.samples[command].summary(), errors: this.errors[command], timeouts: this.timeouts[command] };
  }
}

async function timed(client: LoadClient, command: CommandName, callId: string, window: Window): Promise<CommandReply> {
  const started = performance.now();
  const reply = await client.request(command, callId);
  window.reply(command, performance.now() - started, reply);
  return reply;
}

async function cycle(client: LoadClient, callId: string, window: Window): Promise<void> {
  const offer = await timed(client, 'offer', callId, window);
  if (!offer.ok) return window.cycleDone(false);
  const answer = await timed(client, 'answer', callId, window);
  // delete even after a failed answer, so the offer's ports go back to the pool
  const deleted = await timed(client, 'delete', callId, window);
  window.cycleDone(answer.ok && deleted.ok);
}

/** Creates the live calls; any failure aborts the run (the measurement would be meaningless). */
async function setUpLiveCalls(client: LoadClient, s: LoadSettings): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < s.live; i = next++) {
      const callId = `live-${process.pid}-${i}`;
      for (const command of ['offer', 'answer'] as const) {
        const reply = await client.request(command, callId);
        if (!reply.ok) throw new Error(`setup ${command} of live call ${i} failed: ${reply.error ?? 'error'}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(s.setupConcurrency, Math.max(1, s.live)) }, worker));
  return performance.now() - started;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(client: LoadClient, s: LoadSettings, setupMs: number): Promise<LoadResult> {
  const hz = clockTicksPerSecond();
  const window = new Window();
  let stopping = false;
  let sequence = 0;
  const worker = async (): Promise<void> => {
    while (!stopping && sequence < MAX_CYCLES) await cycle(client, `cr-${process.pid}-${sequence++}`, window);
  };
  const workers = Array.from({ length: s.concurrency }, worker);
  await sleep(s.warmupMs);
  const start = edge(s.relayPid);
  window.recording = true;
  await sleep(s.windowMs);
  window.recording = false;
  const end = edge(s.relayPid);
  stopping = true;
  await Promise.all(workers);
  const seconds = Number(end.ns - start.ns) / 1e9;
  const pct = (ns: number): number => (100 * ns) / 1e9 / seconds;
  const ticksNs = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : ((b - a) * 1e9) / hz);
  const relayNs = ticksNs(start.relayTicks, end.relayTicks);
  const runNs = start.relayRunNs === null || end.relayRunNs === null ? null : end.relayRunNs - start.relayRunNs;
  const ownNs = (end.own.user - start.own.user + end.own.system - start.own.system) * 1000;
  const machineNs = ticksNs(start.machineTicks, end.machineTicks);
  return {
    setupMs,
    setupPairsPerS: s.live === 0 ? 0 : s.live / (setupMs / 1000),
    windowS: seconds,
    cycles: window.cycles,
    cyclesPerS: window.cycles / seconds,
    failedCycles: window.failedCycles,
    commands: Object.fromEntries(COMMANDS.map((c) => [c, window.commandResult(c)])) as Record<CommandName, CommandResult>,
    errorSamples: window.errorSamples,
    retransmissions: client.retransmissions,
    relayCpuPct: relayNs === null ? null : pct(relayNs),
    relayRunPct: runNs === null ? null : pct(runNs),
    relayThreads: busyThreads(start, end, (ticks) => pct((ticks * 1e9) / hz)),
    generatorCpuPct: pct(ownNs),
    otherCpuPct: machineNs === null || relayNs === null ? null : Math.max(0, pct(machineNs - relayNs - ownNs)),
    windowStartUs: Number(start.ns / 1000n),
    windowEndUs: Number(end.ns / 1000n),
  };
}

/** Threads that used at least 1 % of a core over the window, busiest first. */
function busyThreads(start: Edge, end: Edge, pct: (ticks: number) => number): LoadResult['relayThreads'] {
  const threads: LoadResult['relayThreads'] = [];
  for (const [tid, t] of end.relayThreads) {
    const used = pct(t.ticks - (start.relayThreads.get(tid)?.ticks ?? 0));
    if (used >= 1) threads.push({ tid, name: t.name, pct: used });
  }
  return threads.sort((a, b) => b.pct - a.pct);
}

function print(message: object): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve()));
}

async function main(): Promise<void> {
  const settings = settingsFromArgs(process.argv.slice(2));
  const client = await openClient(settings.client, settings);
  try {
    const setupMs = await setUpLiveCalls(client, settings);
    await print({ setup: { ms: setupMs } });
    await print({ result: await measure(client, settings, setupMs) });
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await print({ error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
