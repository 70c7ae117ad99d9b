/**
 * Text report of the packet-rate benchmark: a header stating the machine, the pinning
 * and the settings; one table per fixed load with each relay's figures and the rtphub
 * CPU-per-packet ratios against the naive relay and rtpengine; the ramp summary; the
 * errors of failed trials in full at the end.
 */
import type { BenchOptions } from './options';
import { verdict, type PlanResults, type RampOutcome } from './plan';
import type { TrialMeasurement, TrialResult } from './trial';

export interface RunContext {
  machine: string;
  pinning: string[];
  loadAverage: number;
  notes: string[];
}

/** Packets per second each direction of a call carries (one per 20 ms). */
const PACKETS_PER_S_PER_DIRECTION = 50;
const BUSY_LOAD = 0.5;

export function renderReport(context: RunContext, options: BenchOptions, results: PlanResults): string {
  const out: string[] = [...header(context, options)];
  for (const s of results.skipped) out.push(`skipped ${s.relay}: ${s.reason}`);
  for (const calls of options.fixedLoads) {
    out.push('', ...fixedLoadSection(calls, results.fixed.filter((r) => r.calls === calls)));
  }
  if (results.ramps.length > 0) out.push('', ...rampSection(results.ramps, options));
  const failures = [...results.fixed, ...results.ramps.flatMap((r) => r.steps)].filter((r) => !r.ok);
  if (failures.length > 0) out.push('', 'Failed trials:');
  for (const f of failures) if (!f.ok) out.push(`  ${f.relay} @ ${f.calls} calls: ${f.error}`);
  return `${out.join('\n')}\n`;
}

function header(context: RunContext, o: BenchOptions): string[] {
  const lines = [
    'rtphub packet-rate benchmark',
    `machine: ${context.machine}`,
    ...context.pinning.map((p) => `pinning: ${p}`),
    'traffic: 172-byte G.711 RTP packets (12-byte header + 160-byte payload), one per 20 ms per direction, ' +
      'both directions of every call, send instants spread evenly over the 20 ms',
    `fixed loads: ${fmtS(o.windowMs)} window after ${fmtS(o.warmupMs)} warm-up; ramp steps: ${fmtS(o.rampWindowMs)} after ${fmtS(o.rampWarmupMs)}`,
    'CPU ns/pkt = relay utime+stime over the window (/proc/PID/stat) / packets forwarded in the window; ' +
      'mem/call = VmRSS with the calls minus before them, / calls; marginal = VmRSS growth from half the calls to all of them, / calls added',
    `gen lag = how late the generator sent (above ${o.maxSendLagUs / 1000} ms it, not the relay, is the limit); ` +
      'other CPU % = CPU used by unrelated processes during the window (100 = one core)',
    `load average at start: ${context.loadAverage.toFixed(2)}${context.loadAverage > BUSY_LOAD ? ' (machine busy: expect noisy figures)' : ''}`,
  ];
  return [...lines, ...context.notes];
}

function fixedLoadSection(calls: number, results: TrialResult[]): string[] {
  const offered = calls * 2 * PACKETS_PER_S_PER_DIRECTION;
  const rows = results.map((r) => (r.ok ? measurementRow(r) : [r.relay, `failed: ${r.error.split('\n')[0]}`]));
  return [
    `== ${calls} calls (${offered} packets/s offered to the relay) ==`,
    ...table(
      ['relay', 'pps in', 'pps out', 'loss %', 'p50 us', 'p99 us', 'p999 us', 'CPU ns/pkt', 'CPU %', 'mem/call KiB', 'marginal KiB', 'gen lag p99 us', 'other CPU %'],
      rows,
    ),
    ...ratioLines(results.filter((r): r is TrialMeasurement => r.ok)),
    ...results.flatMap((r) => (r.ok ? notes(r) : [])),
  ];
}

/** Why a row's figures may not be the relay's own, and the relay's drop counters. */
function notes(r: TrialMeasurement): string[] {
  const out: string[] = [];
  if (r.disturbance === 'generator') out.push(`note: ${r.relay}: the generator fell behind its schedule (gen lag)`);
  if (r.disturbance === 'other load') out.push(`note: ${r.relay}: other processes competed for the CPUs (other CPU %)`);
  const trouble = Object.entries(r.relayCounters ?? {}).filter(([name, value]) => value > 0 && /drop|exhaust|error/.test(name));
  if (trouble.length > 0) out.push(`note: ${r.relay} counters: ${trouble.map(([name, value]) => `${name}=${value}`).join(', ')}`);
  return out;
}

function measurementRow(r: TrialMeasurement): string[] {
  const g = r.generator;
  return [
    r.relay,
    fmt(g.ppsIn, 0),
    fmt(g.ppsOut, 0),
    fmt(g.lossPct, 3),
    fmt(g.latencyP50Us, 0),
    fmt(g.latencyP99Us, 0),
    fmt(g.latencyP999Us, 0),
    r.cpuNsPerPacket === null ? 'n/a' : fmt(r.cpuNsPerPacket, 0),
    r.relayCpuPct === null ? 'n/a' : fmt(r.relayCpuPct, 1),
    fmt(r.memoryPerCallBytes / 1024, 1),
    Number.isNaN(r.marginalMemoryPerCallBytes) ? 'n/a' : fmt(r.marginalMemoryPerCallBytes / 1024, 2),
    fmt(g.sendLagP99Us, 0),
    r.otherCpuPct === null ? 'n/a' : fmt(r.otherCpuPct, 0),
  ];
}

/** rtphub's CPU per packet relative to each reference relay measured at this load. */
function ratioLines(results: TrialMeasurement[]): string[] {
  const withCpu = results.filter((r) => r.cpuNsPerPacket !== null);
  const references = ['naive', 'rtpengine']
    .map((prefix) => withCpu.find((r) => r.relay.startsWith(prefix)))
    .filter((r): r is TrialMeasurement => r !== undefined);
  if (references.length === 0) return [];
  return withCpu
    .filter((r) => r.relay.startsWith('rtphub'))
    .map((r) => {
      const parts = references.map((ref) => `rtphub/${ref.relay.split(' ')[0]} = ${fmt(r.cpuNsPerPacket! / ref.cpuNsPerPacket!, 2)}`);
      return `CPU ns/pkt ratios, ${r.relay}: ${parts.join(', ')}`;
    });
}

function rampSection(ramps: RampOutcome[], o: BenchOptions): string[] {
  const rows = ramps.map((ramp) => [
    ramp.relay,
    ...o.rampSteps.map((calls) => stepCell(ramp.steps.find((s) => s.calls === calls), o)),
    maxCallsCell(ramp, o),
  ]);
  return [
    `== Ramp: most calls forwarded with loss < ${o.maxLossPct} % and p99 < ${o.maxP99Us / 1000} ms ==`,
    ...table(['relay', ...o.rampSteps.map(String), 'max calls'], rows),
    'cells: p99 latency in ms / loss % of each step, or why the ramp stopped there',
  ];
}

function stepCell(step: TrialResult | undefined, o: BenchOptions): string {
  if (!step) return '-';
  if (!step.ok) return 'error';
  const cell = `${fmt(step.generator.latencyP99Us / 1000, 1)}/${fmt(step.generator.lossPct, 2)}`;
  const v = verdict(step, o);
  return v === 'pass' ? cell : `${v}! ${cell}`;
}

function maxCallsCell(ramp: RampOutcome, o: BenchOptions): string {
  const best = ramp.maxCalls === null ? `< ${o.rampSteps[0]}` : String(ramp.maxCalls);
  if (ramp.stoppedBy === 'generator') return `${best} (then generator limit)`;
  if (ramp.stoppedBy === 'other load') return `${best} (then disturbed by other load)`;
  if (ramp.stoppedBy === 'last step') return `>= ${best} (all steps passed)`;
  if (ramp.stoppedBy === 'time budget') return `>= ${best} (time budget spent)`;
  return best;
}

/** Aligned columns; a row with fewer cells (a failed trial) prints the rest as free text. */
function table(head: string[], rows: string[][]): string[] {
  const full = [head, ...rows.filter((r) => r.length === head.length)];
  const widths = head.map((_, i) => Math.max(...(i === 0 ? [head, ...rows] : full).map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.length < head.length
      ? `${cells[0].padEnd(widths[0])}  ${cells.slice(1).join(' ')}`
      : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), ...rows.map(line)];
}

function fmt(n: number, digits: number): string {
  return n.toFixed(digits);
}

function fmtS(ms: number): string {
  return `${ms / 1000} s`;
}
