/**
 * One rate step of `npm run bench:sip`: a fresh SIPp caller (pinned to the generator CPU)
 * places `rate × windowS` calls at `rate` calls/s through the system under test to the SIPp
 * callee; each call plays RTP for `callMs` (echoed by the callee, so media crosses the relay
 * both ways) and ends with BYE. The step reads SIPp's own statistics (-trace_stat: calls
 * placed, succeeded, failed) and per-call setup times (-trace_rtt: INVITE sent → 200 received),
 * and the CPU time the system under test and the SIPp processes used during the step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GuardedChild } from '../child';
import { freeUdpPort } from '../ng-client';
import { cpuTicks, processTree, type RunningSystem } from './systems';

export const SIPP = '/usr/bin/sipp';

export interface StepSettings {
  guard: string;
  cpu: number;
  dir: string;
  scenario: string;
  calleePort: number;
  calleePids: () => number[];
  rate: number;
  windowS: number;
  callMs: number;
  mediaPort: number;
}

export interface StepResult {
  rate: number;
  placed: number;
  succeeded: number;
  failed: number;
  failedPct: number;
  /** Calls answered per second, first to last answer of the step. */
  achievedCps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU used by the system under test, % of one core, over the step. */
  systemCpuPct: number;
  /** CPU time of the system under test per completed call (ms). */
  cpuMsPerCall: number;
  /** CPU used by the SIPp caller and callee, % of one core. */
  generatorCpuPct: number;
  elapsedS: number;
  /** CPU used by everything else on the machine (other processes), % of one core: disturbance. */
  otherCpuPct: number;
  /** The first lines of SIPp's error log when calls failed. */
  errors: string;
}

const TICKS_PER_S = 100;

/** Busy ticks of all CPUs so far (/proc/stat: user, nice, system, irq, softirq, steal). */
function machineBusyTicks(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return user + nice + system + irq + softirq + steal;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The last row of SIPp's -trace_stat file, by column name. */
function lastStats(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  if (lines.length < 2) return {};
  const names = lines[0].split(';');
  const values = lines[lines.length - 1].split(';');
  return Object.fromEntries(names.map((n, i) => [n.trim(), (values[i] ?? '').trim()]));
}

export async function runStep(system: RunningSystem, s: StepSettings): Promise<StepResult> {
  const calls = Math.max(1, Math.round(s.rate * s.windowS));
  const sipPort = await freeUdpPort();
  const statFile = join(s.dir, `stat-${system.name.replace(/\W/g, '')}-${s.rate}.csv`);
  const errorFile = join(s.dir, `errors-${system.name.replace(/\W/g, '')}-${s.rate}.log`);
  const args = [
    `127.0.0.1:${s.calleePort}`,
    '-sf', s.scenario,
    '-s', 'bench',
    '-i', '127.0.0.1', '-p', String(sipPort),
    '-rsa', `127.0.0.1:${system.sipPort}`,
    '-mi', '127.0.0.1', '-mp', String(s.mediaPort),
    '-m', String(calls), '-r', String(s.rate), '-l', String(Math.ceil(s.rate * (s.callMs / 1000 + 10))),
    '-d', String(s.callMs),
    '-nostdin', '-timeout', `${Math.ceil(s.windowS + s.callMs / 1000 + 40)}s`,
    '-recv_timeout', '10000',
    '-max_socket', '60000',
    '-trace_rtt', '-rtt_freq', '1',
    '-trace_stat', '-fd', '1', '-stf', statFile,
    '-trace_err', '-error_file', errorFile,
  ];
  const startMachine = machineBusyTicks();
  const startHarness = cpuTicks([process.pid]);
  const startSystem = cpuTicks(system.pids());
  const startCallee = cpuTicks(s.calleePids());
  const started = Date.now();
  const uac = GuardedChild.spawn({ cpu: s.cpu, nice: 0, maxSeconds: Math.ceil(s.windowS + s.callMs / 1000 + 60), guard: s.guard, command: SIPP, args, label: `sipp uac @${s.rate}` });
  let uacTicks = 0;
  while (uac.running) {
    uacTicks = Math.max(uacTicks, cpuTicks(processTree(uac.pid)));
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (Date.now() - started > (s.windowS + s.callMs / 1000 + 70) * 1000) {
      await uac.stop(null);
      break;
    }
  }
  const elapsedS = (Date.now() - started) / 1000;
  const systemTicks = cpuTicks(system.pids()) - startSystem;
  const calleeTicks = cpuTicks(s.calleePids()) - startCallee;
  const harnessTicks = cpuTicks([process.pid]) - startHarness;
  const otherTicks = Math.max(0, machineBusyTicks() - startMachine - systemTicks - calleeTicks - uacTicks - harnessTicks);
  const stats = lastStats(statFile);
  const placed = Number(stats['OutgoingCall(C)'] ?? 0) || calls;
  const succeeded = Number(stats['SuccessfulCall(C)'] ?? 0);
  const failed = Math.max(0, calls - succeeded);
  const rttFile = join(process.cwd(), `uac_${uac.pid}_rtt.csv`);
  // Date_ms;response_time_ms;rtd_no: when each call was answered, and its setup time
  const rows = existsSync(rttFile)
    ? readFileSync(rttFile, 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.split(';').map(Number))
        .filter((r) => r.length >= 2 && r.every(Number.isFinite))
    : [];
  const rtt = rows.map((r) => r[1]).sort((a, b) => a - b);
  const answeredAt = rows.map((r) => r[0]).sort((a, b) => a - b);
  const span = answeredAt.length > 1 ? (answeredAt[answeredAt.length - 1] - answeredAt[0]) / 1000 : 0;
  return {
    rate: s.rate,
    placed,
    succeeded,
    failed,
    failedPct: (100 * failed) / calls,
    achievedCps: span > 0 ? (answeredAt.length - 1) / span : 0,
    p50Ms: percentile(rtt, 50),
    p99Ms: percentile(rtt, 99),
    systemCpuPct: (100 * systemTicks) / TICKS_PER_S / elapsedS,
    cpuMsPerCall: succeeded > 0 ? (1000 * systemTicks) / TICKS_PER_S / succeeded : 0,
    generatorCpuPct: (100 * (uacTicks + calleeTicks)) / TICKS_PER_S / elapsedS,
    elapsedS,
    otherCpuPct: (100 * otherTicks) / TICKS_PER_S / elapsedS,
    errors: failed > 0 && existsSync(errorFile) ? readFileSync(errorFile, 'utf8').split('\n').slice(0, 12).join('\n') : '',
  };
}
