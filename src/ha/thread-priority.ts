/**
 * Raises the calling thread's scheduling priority, as corosync and keepalived run their
 * heartbeats: real-time round-robin at `rrPriority` when allowed, else the highest nice priority.
 * For threads that sleep almost all the time and must run as soon as they wake (the keep-alive
 * and replication threads): on a busy machine a sleeping thread can otherwise wait for a CPU
 * longer than its peer waits for it. Neither is required; without the privilege the thread runs
 * as it is. Says what it got.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import os from 'node:os';

export function raiseThreadPriority(rrPriority: number): string {
  let tid: number;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return 'default';
  }
  if (!Number.isInteger(tid) || tid <= 0) return 'default';
  const rr = spawnSync('chrt', ['--rr', '--pid', String(rrPriority), String(tid)], { stdio: 'ignore', timeout: 2000 });
  if (rr.status === 0) return `SCHED_RR ${rrPriority}`;
  try {
    os.setPriority(tid, -20);
    return 'nice -20';
  } catch {
    return 'default';
  }
}
