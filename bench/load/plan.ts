/**
 * The benchmark's schedule: every fixed load for every relay (relays interleaved within
 * a load, so slow drift of the machine hits all of them alike), then one ramp per relay
 * that stops at the first step failing the loss/latency criteria. A step where the
 * generator could not keep its own schedule ends the ramp too: beyond it the figures
 * describe the generator, not the relay; likewise a step during which unrelated
 * processes used much CPU. Such a disturbed trial is retried (fresh processes again) up
 * to --retries times, keeping the least disturbed run; before each trial the harness
 * waits (bounded) for the machine to be quiet. Ramps stop once the time budget is
 * spent, so a run always ends in bounded time.
 */
import type { BenchOptions } from './options';
import { waitForQuiet } from './proc-stats';
import type { RelayUnderTest } from './relays/relay';
import { runTrial, type TrialMeasurement, type TrialResult, type TrialSetup } from './trial';

/** Below this share of all CPUs busy, the machine counts as quiet before a trial. */
const QUIET_BUSY_PCT = 10;

export type StepVerdict = 'pass' | 'loss' | 'latency' | 'generator' | 'other load' | 'error';

export interface RampOutcome {
  relay: string;
  steps: TrialResult[];
  /** Most calls of a passing step, or null if none passed. */
  maxCalls: number | null;
  stoppedBy: StepVerdict | 'last step' | 'time budget';
}

export interface PlanResults {
  fixed: TrialResult[];
  ramps: RampOutcome[];
  skipped: Array<{ relay: string; reason: string }>;
}

export type Progress = (message: string) => void;

export function verdict(result: TrialResult, options: BenchOptions): StepVerdict {
  if (!result.ok) return 'error';
  if (result.disturbance) return result.disturbance; // the figures would not be the relay's
  if (result.generator.lossPct >= options.maxLossPct) return 'loss';
  if (result.generator.latencyP99Us >= options.maxP99Us) return 'latency';
  return 'pass';
}

export async function runPlan(relays: RelayUnderTest[], options: BenchOptions, setup: TrialSetup, progress: Progress): Promise<PlanResults> {
  const schedule = new Schedule(options, setup, progress);
  const skipped = relays.flatMap((r) => {
    const reason = r.unavailableReason();
    return reason ? [{ relay: r.name, reason }] : [];
  });
  const usable = relays.filter((r) => !skipped.some((s) => s.relay === r.name));
  const fixed: TrialResult[] = [];
  for (const calls of options.fixedLoads) {
    for (const relay of usable) fixed.push(await schedule.trial(relay, calls, setup, ''));
  }
  const ramps: RampOutcome[] = [];
  if (options.rampSteps.length > 0) {
    for (const relay of usable) ramps.push(await schedule.ramp(relay));
  }
  return { fixed, ramps, skipped };
}

class Schedule {
  private readonly deadline: number;
  private readonly rampSetup: TrialSetup;

  constructor(
    private readonly options: BenchOptions,
    setup: TrialSetup,
    private readonly progress: Progress,
  ) {
    this.deadline = Date.now() + options.budgetMs;
    const { rampWarmupMs: warmupMs, rampWindowMs: windowMs, drainMs } = options;
    this.rampSetup = { ...setup, timing: { warmupMs, windowMs, drainMs } };
  }

  async ramp(relay: RelayUnderTest): Promise<RampOutcome> {
    const outcome: RampOutcome = { relay: relay.name, steps: [], maxCalls: null, stoppedBy: 'last step' };
    for (const calls of this.options.rampSteps) {
      if (Date.now() > this.deadline) {
        outcome.stoppedBy = 'time budget';
        break;
      }
      const result = await this.trial(relay, calls, this.rampSetup, 'ramp ');
      outcome.steps.push(result);
      const v = verdict(result, this.options);
      if (v !== 'pass') {
        outcome.stoppedBy = v;
        break;
      }
      outcome.maxCalls = calls;
    }
    return outcome;
  }

  /** Waits (bounded) for unrelated load to pass, so that it does not land in the window. */
  private async quiet(): Promise<void> {
    if (this.options.quietWaitMs === 0) return;
    const busy = await waitForQuiet(QUIET_BUSY_PCT, this.options.quietWaitMs);
    if (busy >= QUIET_BUSY_PCT) this.progress(`  the machine is still ${busy.toFixed(0)} % busy; measuring anyway`);
  }

  /** One trial, retried while disturbed; keeps the least disturbed run. */
  async trial(relay: RelayUnderTest, calls: number, setup: TrialSetup, kind: string): Promise<TrialResult> {
    let best: TrialResult | null = null;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      const retry = attempt > 0 && best?.ok ? ` (retry ${attempt}: disturbed by ${best.disturbance})` : '';
      this.progress(`${kind}${calls} calls: ${relay.name}${retry} …`);
      await this.quiet();
      const result = await runTrial(relay, calls, setup);
      this.progress(result.ok ? `  ${summary(result)}` : `  failed: ${result.error.split('\n')[0]}`);
      best = best === null || lessDisturbed(result, best) ? result : best;
      if (!result.ok || !result.disturbance) break;
    }
    return best!;
  }
}

function lessDisturbed(a: TrialResult, b: TrialResult): boolean {
  if (!a.ok || !b.ok) return a.ok;
  if (!a.disturbance || !b.disturbance) return !a.disturbance;
  return a.generator.sendLagP99Us < b.generator.sendLagP99Us;
}

function summary(r: TrialMeasurement): string {
  const g = r.generator;
  const other = r.otherCpuPct === null ? 'n/a' : r.otherCpuPct.toFixed(0);
  return `loss ${g.lossPct.toFixed(3)} %, p99 ${g.latencyP99Us} us, send lag p99 ${g.sendLagP99Us} us, other CPU ${other} %`;
}
