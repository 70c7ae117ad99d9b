/**
 * /proc readings taken at the edges of a measurement window: a process's utime+stime
 * (from /proc/PID/stat, all threads, in clock ticks), its threads' exact on-CPU time (from
 * schedstat, as a cross-check of the tick-sampled figure), the machine's busy time (from
 * /proc/stat) and a process's open descriptors.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Clock ticks per second for /proc/PID/stat and /proc/stat (USER_HZ, 100 on Linux). */
export function clockTicksPerSecond(): number {
  try {
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(hz) && hz > 0 ? hz : 100;
  } catch {
    return 100;
  }
}

/** utime + stime in clock ticks from a /proc stat file. */
function statTicks(stat: string): number {
  // the command name (field 2) may hold spaces; fields after its ')' are fixed
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** utime + stime of a process (all its threads) in clock ticks, or null if it is gone. */
export function processCpuTicks(pid: number): number | null {
  try {
    return statTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** utime + stime of each thread in clock ticks, by thread id, with the thread's name. */
export function threadCpuTicks(pid: number): Map<number, { name: string; ticks: number }> {
  const threads = new Map<number, { name: string; ticks: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      threads.set(Number(tid), { name: Number(tid) === pid ? `${name} main` : name, ticks: statTicks(stat) });
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return threads;
}

/** Sum of every thread's on-CPU nanoseconds (first field of /proc/PID/task/TID/schedstat), or null. */
export function processRunNs(pid: number): number | null {
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    return total;
  } catch {
    return null;
  }
}

/** Non-idle time of all CPUs in clock ticks (first line of /proc/stat), or null. */
export function machineBusyTicks(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    return total - ticks[3] - ticks[4];
  } catch {
    return null;
  }
}

/** Busy share of the whole machine over `ms` (100 = one core busy), or null if /proc/stat is unreadable. */
export async function machineBusyPct(ms: number): Promise<number | null> {
  const read = (): number[] | null => {
    try {
      return readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    } catch {
      return null;
    }
  };
  const a = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = read();
  if (!a || !b) return null;
  const delta = b.map((v, i) => v - a[i]);
  const total = delta.reduce((x, y) => x + y, 0);
  const idle = delta[3] + delta[4];
  return total <= 0 ? null : (100 * (total - idle) * (cpus().length || 1)) / total;
}

/** Number of open descriptors of a process, or null if /proc/PID/fd cannot be read. */
export function openDescriptors(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Number of threads of a process, or null. */
export function threadCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return null;
  }
}
