/**
 * The ng control path in one process, without the network: offer, answer and delete for N
 * calls handed to the running relay's NgServer.handleMessage (parse, reply cache, call model,
 * native streams, SDP rewrite, stats, encode), with L calls live. Prints cycles per CPU-second
 * of this process (main thread and workers). A tool for profiling the control path
 * (`node --cpu-prof`); `npm run bench:control` is the benchmark of record.
 *
 * usage: npx tsx bench/micro/ng-cycle.ts [--live L] [--cycles N] [--concurrency C]
 */
import { readdirSync, readFileSync } from 'node:fs';
import pino from 'pino';
import { start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import { templates } from '../load/control/requests';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const live = arg('--live', 2000);
  const cycles = arg('--cycles', 20000);
  const concurrency = arg('--concurrency', 64);
  const config = loadConfig(['--listen-ng=', '--port-min=20000', '--port-max=60000', '--num-threads=1', '--delete-delay=0', '--config-file=']);
  const running = await start(config, pino({ level: 'silent' }));
  const t = templates();
  const source = { address: '127.0.0.1', port: 5060 };
  let cookie = 0;
  const send = async (command: 'offer' | 'answer' | 'delete', callId: string) => {
    const reply = await running.ng.handleMessage(t[command].datagram(`c${cookie++}`, callId), source, 'udp');
    if (!reply || !reply.includes('6:result2:ok')) throw new Error(`${command} ${callId}: ${reply?.toString('latin1').slice(0, 200)}`);
  };
  for (let i = 0; i < live; i++) {
    await send('offer', `live-${i}`);
    await send('answer', `live-${i}`);
  }
  const run = async (n: number, tag: string) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const id = `${tag}-${next++}`;
        await send('offer', id);
        await send('answer', id);
        await send('delete', id);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  await run(Math.min(cycles, 5000), 'warm');
  const threads0 = threadTimes();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(cycles, 'cycle');
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(`${cycles} cycles with ${live} live: ${(cycles / wallS).toFixed(0)} cycles/s wall, ${(cycles / cpuS).toFixed(0)} cycles per CPU-second (${((cpuS / cycles) * 1e6).toFixed(0)} us CPU per cycle)`);
  const threads1 = threadTimes();
  for (const [tid, t1] of threads1) {
    const used = t1.ticks - (threads0.get(tid)?.ticks ?? 0);
    if (used > 0) console.log(`  thread ${tid} (${t1.name}): ${((used * 10_000) / cycles).toFixed(0)} us per cycle`);
  }
  await running.stop();
}

/** utime+stime in clock ticks (1/100 s) of each thread of this process, from /proc. */
function threadTimes(): Map<string, { name: string; ticks: number }> {
  const out = new Map<string, { name: string; ticks: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      out.set(tid, { name: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

void main();
