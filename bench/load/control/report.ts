/**
 * Text report of the control-rate benchmark: a header with the machine, the pinning, the
 * traffic and the relays' command lines; one table row per trial; the rtphub/rtpengine
 * ratios per live count; the issue's goals, met or not; the profile's hot spots; failures.
 */
import type { ControlOptions } from './options';
import type { ProfileSummary } from './profile';
import type { TrialMeasurement, TrialResult } from './trial';

export interface RunContext {
  machine: string;
  pinning: string[];
  loadAverage: number;
  notes: string[];
}

export interface ProfileReport {
  live: number;
  cyclesPerS: number;
  file: string;
  summary: ProfileSummary;
}

/** The goals: cycles/s on one core, and the multiple of rtpengine. */
export const GOAL_CYCLES_PER_S = 10_000;
export const GOAL_RATIO = 5;
const GENERATOR_BOUND_PCT = 85;
const SATURATED_PCT = 85;
const BUSY_OTHER_PCT = 20;
const PROFILE_ROWS = 15;

export function renderReport(context: RunContext, o: ControlOptions, results: TrialResult[], profile: ProfileReport | null): string {
  const ok = results.filter((r): r is TrialMeasurement => r.ok);
  const out = [
    ...header(context, o),
    '',
    ...table(HEAD, results.map(row)),
    '',
    ...ratioLines(ok),
    ...goalLines(ok),
    ...noteLines(ok),
  ];
  if (profile) out.push('', ...profileLines(profile));
  const failures = results.filter((r) => !r.ok);
  if (failures.length > 0) out.push('', 'Failed trials:');
  for (const f of failures) if (!f.ok) out.push(`  ${f.relay} @ ${f.live} live calls: ${f.error}`);
  return `${out.join('\n')}\n`;
}

function header(c: RunContext, o: ControlOptions): string[] {
  return [
    'rtphub control-plane benchmark (ng over UDP)',
    `machine: ${c.machine}`,
    ...c.pinning.map((p) => `pinning: ${p}`),
    `load: N live calls set up first (offer+answer, not measured), then ${o.concurrency} cycles in flight, ` +
      'each offer -> answer -> delete (delete delay 0) on a new call-id; ' +
      `${o.warmupMs / 1000} s warm-up, ${o.windowMs / 1000} s window; ${o.client} client`,
    'requests: Kamailio-style, trust-address, replace origin+session-connection, ICE remove; ' +
      'offer SDP PCMU/PCMA/G722/G729/telephone-event, answer PCMU/telephone-event',
    'cycles/s = cycles whose delete was answered in the window / window; latency = request sent to reply received, ' +
      'as the generator sees it (p50/p99 in ms)',
    'relay CPU % = utime+stime of all its threads over the window (/proc/PID/stat; 100 = one core); ' +
      'busiest thread = the relay thread that used most CPU (rtphub: "node main" is the JS thread); ' +
      'cycles/CPU-s = cycles/s / (relay CPU % / 100); gen CPU % = the generator process; ' +
      'other CPU % = every other process on the machine',
    `load average at start: ${c.loadAverage.toFixed(2)}${c.loadAverage > 0.5 ? ' (machine busy: expect noisy figures)' : ''}`,
    ...c.notes,
  ];
}

const HEAD = [
  'relay', 'workers', 'live', 'cycles/s', 'offer p50/p99', 'answer p50/p99', 'delete p50/p99', 'relay CPU %',
  'busiest thread %', 'cycles/CPU-s', 'gen CPU %', 'other CPU %', 'fds', 'RSS MiB', 'failed',
];

function row(r: TrialResult): string[] {
  if (!r.ok) return [r.relay, `@ ${r.live} live calls failed: ${r.error.split('\n')[0]}`];
  const l = r.load;
  const lat = (c: keyof typeof l.commands): string => `${fmt(l.commands[c].p50Ms, 2)}/${fmt(l.commands[c].p99Ms, 2)}`;
  return [
    r.relay,
    String(r.workers),
    String(r.live),
    fmt(l.cyclesPerS, 0),
    lat('offer'),
    lat('answer'),
    lat('delete'),
    l.relayCpuPct === null ? 'n/a' : fmt(l.relayCpuPct, 1),
    l.relayThreads.length === 0 ? 'n/a' : `${l.relayThreads[0].name} ${fmt(l.relayThreads[0].pct, 0)}`,
    perCpu(r) === null ? 'n/a' : fmt(perCpu(r)!, 0),
    fmt(l.generatorCpuPct, 1),
    l.otherCpuPct === null ? 'n/a' : fmt(l.otherCpuPct, 0),
    r.descriptors === null ? 'n/a' : String(r.descriptors),
    r.rssBytes === null ? 'n/a' : fmt(r.rssBytes / 2 ** 20, 0),
    String(l.failedCycles),
  ];
}

/** Cycles per second of relay CPU time: the rate one fully used core would give. */
export function perCpu(r: TrialMeasurement): number | null {
  const cpu = r.load.relayCpuPct;
  return cpu === null || cpu <= 0 ? null : r.load.cyclesPerS / (cpu / 100);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function ratioLines(ok: TrialMeasurement[]): string[] {
  const lives = [...new Set(ok.map((r) => r.live))];
  const lines: string[] = [];
  for (const live of lives) {
    const hub = ok.filter((r) => r.live === live && r.relay === 'rtphub');
    const engine = ok.filter((r) => r.live === live && r.relay === 'rtpengine');
    if (hub.length === 0 || engine.length === 0) continue;
    const rate = median(hub.map((r) => r.load.cyclesPerS)) / median(engine.map((r) => r.load.cyclesPerS));
    const cpu = (rs: TrialMeasurement[]): number => median(rs.map((r) => perCpu(r) ?? NaN));
    lines.push(`rtphub/rtpengine @ ${live} live calls: cycles/s ${fmt(rate, 2)}x, cycles per relay CPU-second ${fmt(cpu(hub) / cpu(engine), 2)}x`);
  }
  return lines;
}

function goalLines(ok: TrialMeasurement[]): string[] {
  const hub = ok.filter((r) => r.relay === 'rtphub');
  if (hub.length === 0) return [];
  const best = hub.reduce((a, b) => (b.load.cyclesPerS > a.load.cyclesPerS ? b : a));
  const lines = [
    `goal >= ${GOAL_CYCLES_PER_S} cycles/s on one core: ${best.load.cyclesPerS >= GOAL_CYCLES_PER_S ? 'met' : 'NOT met'} ` +
      `(best rtphub: ${fmt(best.load.cyclesPerS, 0)} cycles/s @ ${best.live} live calls, ${fmt(perCpu(best) ?? NaN, 0)} per CPU-second)`,
  ];
  const engine = ok.filter((r) => r.relay === 'rtpengine');
  for (const live of [...new Set(engine.map((r) => r.live))]) {
    const h = hub.filter((r) => r.live === live);
    if (h.length === 0) continue;
    const ratio = median(h.map((r) => r.load.cyclesPerS)) / median(engine.filter((r) => r.live === live).map((r) => r.load.cyclesPerS));
    lines.push(`goal >= ${GOAL_RATIO}x rtpengine @ ${live} live calls: ${ratio >= GOAL_RATIO ? 'met' : 'NOT met'} (${fmt(ratio, 2)}x)`);
  }
  return lines;
}

function noteLines(ok: TrialMeasurement[]): string[] {
  const notes: string[] = [];
  const echo = ok.find((r) => r.relay === 'ng-echo');
  if (echo) {
    notes.push(
      `generator ceiling: ${fmt(echo.load.cyclesPerS, 0)} cycles/s against ng-echo (a stub answering at once), ` +
        `generator CPU ${fmt(echo.load.generatorCpuPct, 0)} %: relay figures well below this are the relay's`,
    );
  }
  for (const r of ok) {
    if (r.relay === 'ng-echo') continue;
    const l = r.load;
    const at = `${r.relay} @ ${r.live}`;
    if (l.generatorCpuPct > GENERATOR_BOUND_PCT) notes.push(`note: ${at}: the generator used ${fmt(l.generatorCpuPct, 0)} % of its core; it may be the limit`);
    else if (l.relayCpuPct !== null && l.relayCpuPct < SATURATED_PCT) {
      notes.push(`note: ${at}: relay CPU ${fmt(l.relayCpuPct, 0)} % < ${SATURATED_PCT} %: not CPU-bound at this concurrency; cycles/CPU-s is the fairer figure`);
    }
    if (l.otherCpuPct !== null && l.otherCpuPct > BUSY_OTHER_PCT) notes.push(`note: ${at}: other processes used ${fmt(l.otherCpuPct, 0)} % CPU during the window`);
    if (r.attempts > 1) notes.push(`note: ${at}: run ${r.attempts} times because other processes disturbed the window; kept the least disturbed`);
    if (l.retransmissions > 0) notes.push(`note: ${at}: ${l.retransmissions} retransmissions`);
    for (const [error, count] of Object.entries(l.errorSamples)) notes.push(`note: ${at}: ${count} x ${error}`);
    for (const w of r.warnings) notes.push(`note: ${at} logged: ${w.slice(0, 200)}`);
  }
  return notes;
}

function profileLines(p: ProfileReport): string[] {
  const s = p.summary;
  const pct = (n: number): string => fmt(n, 1);
  return [
    `== rtphub CPU profile: main thread, ${p.live} live calls, ${fmt(p.cyclesPerS, 0)} cycles/s under the profiler, ` +
      `${s.samples} samples over ${fmt(s.sampledMs / 1000, 1)} s of the window ==`,
    `profile: ${p.file} (open in Chrome DevTools or speedscope)`,
    'time by area (% of main-thread samples; "(idle)" = waiting in the event loop):',
    ...s.areas.slice(0, 14).map((a) => `  ${pct(a.pct).padStart(5)}  ${a.area}`),
    'top functions by self time (self %, inclusive %):',
    ...s.bySelf.slice(0, PROFILE_ROWS).map((f) => `  ${pct(f.selfPct).padStart(5)} ${pct(f.inclusivePct).padStart(5)}  ${f.name}`),
    'our TypeScript by inclusive time (self %, inclusive %):',
    ...s.ourByInclusive.slice(0, PROFILE_ROWS).map((f) => `  ${pct(f.selfPct).padStart(5)} ${pct(f.inclusivePct).padStart(5)}  ${f.name}`),
  ];
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
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}
