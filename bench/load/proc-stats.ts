/**
 * Readings from /proc about the relay under test and the machine. The relay's CPU time
 * is sampled by the generator itself at the window edges; this reads memory and load,
 * and waits for the machine to calm down between trials.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resident set size of a process in bytes (VmRSS from /proc/PID/status). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** One-minute load average: a busy machine makes every figure noisier. */
export function oneMinuteLoad(): number {
  return loadavg()[0];
}

/** Busy and total CPU time of all CPUs so far, in ticks (/proc/stat). */
function cpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/**
 * Waits until the machine's CPUs are busy less than `maxBusyPct` % over half a second,
 * for at most `maxWaitMs`; returns the last busy share seen (%). Called with no child of
 * ours running, so whatever is busy is someone else.
 */
export async function waitForQuiet(maxBusyPct: number, maxWaitMs: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  let busyPct = 100;
  do {
    const before = cpuTicks();
    await sleep(500);
    const after = cpuTicks();
    busyPct = (100 * (after.busy - before.busy)) / Math.max(1, after.total - before.total);
  } while (busyPct >= maxBusyPct && Date.now() < deadline);
  return busyPct;
}
