/**
 * The systems under test of `npm run bench:sip`, each pinned to the same CPU:
 * - `rtphub`: one process, `bin/rtphub.js` (compiled dist/) with its SIP front on a loopback
 *   port, the callee as its only proxy, one forwarding worker;
 * - `kamailio+rtpengine`: Debian's Kamailio (dispatcher + rtpengine module, the config in this
 *   folder) driving Debian's rtpengine (--table=-1: no kernel forwarding, one thread), both on
 *   the one CPU.
 * Each reports the process ids whose CPU time counts (the whole process trees).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { GuardedChild } from '../child';
import { freeUdpPort } from '../ng-client';
import { repoRoot } from '../paths';

export interface Launch {
  guard: string;
  cpu: number;
  maxSeconds: number;
  portMin: number;
  portMax: number;
  /** Where the callee (the SIPp UAS) listens. */
  calleePort: number;
  /** Health probes of the proxy (ms; both systems get the same). */
  probeIntervalMs: number;
  dir: string;
}

export interface RunningSystem {
  name: string;
  sipPort: number;
  /** Processes whose CPU time is the system's. */
  pids(): number[];
  stop(): Promise<void>;
  /** Line for the report: versions, command lines. */
  describe: string;
}

export interface SystemUnderTest {
  name: string;
  unavailableReason(): string | null;
  start(launch: Launch): Promise<RunningSystem>;
}

const KAMAILIO = '/usr/sbin/kamailio';
const RTPENGINE = '/usr/bin/rtpengine';


/** The process and all its descendants (/proc/PID/task/TID/children). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch {
        // gone
      }
    }
  }
  return out;
}

/** utime + stime of processes, in clock ticks. */
export function cpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks;
}

/** Resolves once something answers OPTIONS on `port`, or rejects after `timeoutMs`. */
async function waitForSip(port: number, timeoutMs: number, child: GuardedChild): Promise<void> {
  const socket = createSocket('udp4');
  let answered = false;
  socket.on('message', (m) => {
    if (m.toString('latin1').startsWith('SIP/2.0 ')) answered = true;
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const me = socket.address().port;
  const deadline = Date.now() + timeoutMs;
  try {
    for (let i = 0; !answered; i++) {
      if (!child.running) throw child.failure('exited during start-up');
      if (Date.now() > deadline) throw child.failure(`no answer to OPTIONS on ${port} within ${timeoutMs} ms`);
      const options = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bKbench${i}`,
        'Max-Forwards: 70',
        `From: <sip:bench@127.0.0.1:${me}>;tag=b${i}`,
        `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: bench-probe-${i}`,
        `CSeq: ${i + 1} OPTIONS`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(options, port, '127.0.0.1');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    socket.close();
  }
}

export class RtphubSystem implements SystemUnderTest {
  readonly name = 'rtphub';

  unavailableReason(): string | null {
    return existsSync(join(repoRoot(), 'dist', 'src', 'cli', 'main.js')) ? null : 'dist/ missing: run npm run build';
  }

  async start(launch: Launch): Promise<RunningSystem> {
    const sipPort = await freeUdpPort();
    const args = [
      // e.g. RTPHUB_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the front
      ...(process.env.RTPHUB_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      join(repoRoot(), 'bin', 'rtphub.js'),
      '--listen-ng=127.0.0.1:0',
      '--interface=127.0.0.1',
      `--port-min=${launch.portMin}`,
      `--port-max=${launch.portMax}`,
      '--num-threads=1',
      '--delete-delay=0',
      '--log-level=3',
      `--listen-sip=127.0.0.1:${sipPort}`,
      `--proxy=sip:127.0.0.1:${launch.calleePort}`,
      `--proxy-probe-interval=${launch.probeIntervalMs}`,
    ];
    const child = GuardedChild.spawn({ cpu: launch.cpu, nice: 0, maxSeconds: launch.maxSeconds, guard: launch.guard, command: process.execPath, args, label: 'rtphub' });
    await waitForSip(sipPort, 15_000, child);
    return {
      name: this.name,
      sipPort,
      pids: () => processTree(child.pid),
      stop: () => child.stop(null),
      describe: `rtphub: node ${args.join(' ')}`,
    };
  }
}

export class KamailioRtpengineSystem implements SystemUnderTest {
  readonly name = 'kamailio+rtpengine';

  constructor(private readonly children: number) {}

  unavailableReason(): string | null {
    const missing = [KAMAILIO, RTPENGINE].filter((f) => !existsSync(f));
    return missing.length > 0 ? `${missing.join(' and ')} not installed (apt-get install kamailio rtpengine-daemon)` : null;
  }

  async start(launch: Launch): Promise<RunningSystem> {
    const ngPort = await freeUdpPort();
    const sipPort = await freeUdpPort();
    const engineArgs = [
      '--config-file=none',
      '--foreground',
      '--table=-1',
      '--interface=127.0.0.1',
      `--listen-ng=127.0.0.1:${ngPort}`,
      `--port-min=${launch.portMin}`,
      `--port-max=${launch.portMax}`,
      '--num-threads=1',
      '--delete-delay=0',
      '--log-stderr',
      '--log-level=3',
    ];
    const dir = join(launch.dir, 'kamailio');
    mkdirSync(join(dir, 'run'), { recursive: true });
    const list = join(dir, 'dispatcher.list');
    writeFileSync(list, `1 sip:127.0.0.1:${launch.calleePort}\n`);
    const cfg = join(dir, 'kamailio.cfg');
    const template = readFileSync(join(repoRoot(), 'bench', 'load', 'sip', 'kamailio-dispatcher.cfg'), 'utf8');
    writeFileSync(
      cfg,
      template
        .replaceAll('@SIP_PORT@', String(sipPort))
        .replaceAll('@NG_PORT@', String(ngPort))
        .replaceAll('@LIST@', list)
        .replaceAll('@CHILDREN@', String(this.children))
        .replaceAll('@PING@', String(Math.max(1, Math.round(launch.probeIntervalMs / 1000)))),
    );
    const engine = GuardedChild.spawn({ cpu: launch.cpu, nice: 0, maxSeconds: launch.maxSeconds, guard: launch.guard, command: RTPENGINE, args: engineArgs, label: 'rtpengine' });
    const kamArgs = ['-DD', '-E', '-f', cfg, '-P', join(dir, 'run', 'k.pid'), '-Y', join(dir, 'run'), '-w', dir, '-m', '256', '-M', '16'];
    let kamailio: GuardedChild | null = null;
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (!engine.running) throw engine.failure('exited during start-up');
      kamailio = GuardedChild.spawn({ cpu: launch.cpu, nice: 0, maxSeconds: launch.maxSeconds, guard: launch.guard, command: KAMAILIO, args: kamArgs, label: 'kamailio' });
      await waitForSip(sipPort, 15_000, kamailio);
    } catch (error) {
      await kamailio?.stop(null);
      await engine.stop(null);
      throw error;
    }
    const k = kamailio;
    return {
      name: this.name,
      sipPort,
      pids: () => [...processTree(k.pid), ...processTree(engine.pid)],
      stop: async () => {
        await k.stop(null);
        await engine.stop(null);
      },
      describe: `kamailio ${version(KAMAILIO, ['-v'])} (children=${this.children}, dispatcher + rtpengine module); rtpengine ${version(RTPENGINE, ['--version'])}: ${engineArgs.join(' ')}`,
    };
  }
}

function version(binary: string, args: string[]): string {
  try {
    const out = execFileSync('sh', ['-c', `${binary} ${args.join(' ')} 2>&1`], { encoding: 'utf8' });
    return (/(\d+\.\d+[.\d~\w-]*)/.exec(out)?.[1] ?? out.split('\n')[0]).trim();
  } catch {
    return 'unknown';
  }
}
