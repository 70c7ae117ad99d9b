/**
 * One trial: a fresh relay process, a fresh generator, one load, one measurement. The
 * relay's RSS is read once it is up (before any call exists), when half the calls exist, when
 * all of them do, and after the window (calls still alive): memory per call is the whole growth
 * over the calls, and the marginal figure the growth from half to all of them (what one more
 * call costs once the process is warm: no start-up heap growth, JIT code or packet buffers in
 * it); its CPU time over the window comes from the generator. Whatever
 * fails, both processes are stopped and the failure is returned, not thrown.
 */
import { Generator, type GeneratorResult } from './generator';
import type { NativeTools } from './native-tools';
import { residentBytes } from './proc-stats';
import type { RelayUnderTest, RunningRelay } from './relays/relay';

export interface TrialTiming {
  warmupMs: number;
  windowMs: number;
  drainMs: number;
}

export interface TrialSetup {
  tools: NativeTools;
  generatorCpu: number;
  nice: number;
  timing: TrialTiming;
  /** Send lag p99 (us) above which the generator, not the relay, limited the step. */
  maxSendLagUs: number;
  /** CPU use by unrelated processes (% of one core) above which a trial counts as disturbed. */
  maxOtherCpuPct: number;
}

/** Why a trial's figures may not describe the relay: the generator fell behind, or other processes competed. */
export type Disturbance = 'generator' | 'other load';

export interface TrialMeasurement {
  ok: true;
  relay: string;
  calls: number;
  generator: GeneratorResult;
  /** Relay CPU time per packet the generator received during the window; null if unknown. */
  cpuNsPerPacket: number | null;
  /** The same from the scheduler's exact run time instead of tick-sampled utime+stime. */
  runNsPerPacket: number | null;
  /** Relay CPU time as a share of the window (100 = one core). */
  relayCpuPct: number | null;
  /** CPU used by processes other than the relay and the generator during the window (100 = one core). */
  otherCpuPct: number | null;
  memoryPerCallBytes: number;
  /** RSS growth from half the calls to all of them, per call. */
  marginalMemoryPerCallBytes: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  disturbance: Disturbance | null;
  relayCounters: Record<string, number> | null;
}

export interface TrialFailure {
  ok: false;
  relay: string;
  calls: number;
  error: string;
}

export type TrialResult = TrialMeasurement | TrialFailure;

export async function runTrial(relay: RelayUnderTest, calls: number, setup: TrialSetup): Promise<TrialResult> {
  let running: RunningRelay | null = null;
  let generator: Generator | null = null;
  try {
    setup.tools.ensureBuilt();
    running = await relay.start();
    const rssBeforeBytes = residentBytes(running.pid);
    generator = await Generator.start({
      binary: setup.tools.generator,
      guard: setup.tools.guard,
      cpu: setup.generatorCpu,
      nice: setup.nice,
      calls,
      ...setup.timing,
      relayPid: running.pid,
    });
    const half = running.batches ? Math.floor(generator.calls.length / 2) : 0;
    const firstPorts = half > 0 ? await running.createCalls(generator.calls.slice(0, half)) : [];
    const rssHalfBytes = residentBytes(running.pid);
    const ports = [...firstPorts, ...(await running.createCalls(generator.calls.slice(half)))];
    const rssAllBytes = residentBytes(running.pid);
    const marginal = half > 0 ? (rssAllBytes - rssHalfBytes) / (generator.calls.length - half) : Number.NaN;
    const result = await generator.run(ports);
    const rssAfterBytes = residentBytes(running.pid);
    const relayCounters = await running.counters().catch(() => null);
    return measurement(relay.name, result, rssBeforeBytes, rssAfterBytes, marginal, relayCounters, setup);
  } catch (err) {
    return { ok: false, relay: relay.name, calls, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await generator?.stop();
    await running?.stop();
  }
}

function measurement(
  relay: string,
  g: GeneratorResult,
  rssBeforeBytes: number,
  rssAfterBytes: number,
  marginalMemoryPerCallBytes: number,
  relayCounters: Record<string, number> | null,
  setup: TrialSetup,
): TrialMeasurement {
  const perPacket = (ns: number): number | null => (ns >= 0 && g.forwardedDuringWindow > 0 ? ns / g.forwardedDuringWindow : null);
  const windowNs = g.windowS * 1e9;
  const known = [g.machineBusyNs, g.relayCpuNs, g.generatorCpuNs].every((ns) => ns >= 0);
  const otherCpuPct = known ? Math.max(0, (100 * (g.machineBusyNs - g.relayCpuNs - g.generatorCpuNs)) / windowNs) : null;
  return {
    ok: true,
    relay,
    calls: g.calls,
    generator: g,
    cpuNsPerPacket: perPacket(g.relayCpuNs),
    runNsPerPacket: perPacket(g.relayRunNs),
    relayCpuPct: g.relayCpuNs >= 0 ? (100 * g.relayCpuNs) / windowNs : null,
    otherCpuPct,
    memoryPerCallBytes: (rssAfterBytes - rssBeforeBytes) / g.calls,
    marginalMemoryPerCallBytes,
    rssBeforeBytes,
    rssAfterBytes,
    disturbance: disturbanceOf(g, otherCpuPct, setup),
    relayCounters,
  };
}

function disturbanceOf(g: GeneratorResult, otherCpuPct: number | null, setup: TrialSetup): Disturbance | null {
  if (g.sendLagP99Us > setup.maxSendLagUs) return 'generator';
  if (otherCpuPct !== null && otherCpuPct > setup.maxOtherCpuPct) return 'other load';
  return null;
}
