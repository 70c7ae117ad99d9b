/**
 * `npm run bench:sip`: calls per second through the SIP front with RTP flowing, against the
 * anchor carriers run today (Kamailio's dispatcher + rtpengine module driving rtpengine) on the
 * same CPU in the same run. Per system: a fresh SIPp callee (echoing RTP) and the system, then
 * rate steps (SIPp callers at increasing calls/s, each call `--call-ms` of RTP both ways and a
 * BYE) until more than 0.1 % of a step's calls fail or the steps run out. Reports per step:
 * completed and failed calls, the rate SIPp achieved, p50/p99 setup time (INVITE → 200 at the
 * caller), the system's CPU (% of its one core, and ms per call) and the generator's.
 *
 *   npm run bench:sip                       # default ramp, ~10 min
 *   npm run bench:sip -- --quick            # 4 s steps, short ramp
 *   npm run bench:sip -- --rates 200,400,800 --window-s 8 --call-ms 1000 --systems rtphub
 *   npm run bench:sip -- --json             # one JSON line at the end
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GuardedChild } from './child';
import { buildNativeTools } from './native-tools';
import { repoRoot } from './paths';
import { runStep, SIPP, type StepResult } from './sip/step';
import { freeUdpPort } from './ng-client';
import { KamailioRtpengineSystem, processTree, RtphubSystem, type SystemUnderTest } from './sip/systems';

const GENERATOR_CPU = 0;
const SYSTEM_CPU = 1;
const FAILED_LIMIT_PCT = 0.1;

interface Options {
  rates: number[];
  windowS: number;
  callMs: number;
  systems: string[];
  kamailioChildren: number;
  probeIntervalMs: number;
  json: boolean;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rates: { type: 'string' },
      'window-s': { type: 'string' },
      'call-ms': { type: 'string', default: '1000' },
      systems: { type: 'string', default: 'rtphub,kamailio+rtpengine' },
      'kamailio-children': { type: 'string', default: '2' },
      'probe-interval-ms': { type: 'string', default: '5000' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('npm run bench:sip -- [--quick] [--rates R1,R2,…] [--window-s S] [--call-ms MS] [--systems rtphub,kamailio+rtpengine] [--kamailio-children N] [--json]\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const rates = (values.rates ?? (quick ? '100,300,600,1000' : '100,200,400,600,800,1000,1200,1500,2000')).split(',').map(Number).filter((n) => n > 0);
  return {
    rates,
    windowS: Number(values['window-s'] ?? (quick ? 4 : 10)),
    callMs: Number(values['call-ms']),
    systems: (values.systems ?? '').split(','),
    kamailioChildren: Number(values['kamailio-children']),
    probeIntervalMs: Number(values['probe-interval-ms']),
    json: values.json ?? false,
  };
}

interface SystemReport {
  name: string;
  describe: string;
  steps: StepResult[];
  /** Highest rate whose calls failed at most 0.1 %. */
  sustainedCps: number;
  error?: string;
}

function table(report: SystemReport): string {
  const head = '| target cps | achieved cps | calls ok | failed % | setup p50 ms | setup p99 ms | system CPU % | CPU ms/call | generator CPU % | other CPU % |';
  const rule = '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const rows = report.steps.map(
    (s) =>
      `| ${s.rate} | ${s.achievedCps.toFixed(0)} | ${s.succeeded} | ${s.failedPct.toFixed(2)} | ${s.p50Ms} | ${s.p99Ms} | ${s.systemCpuPct.toFixed(0)} | ${s.cpuMsPerCall.toFixed(2)} | ${s.generatorCpuPct.toFixed(0)} | ${s.otherCpuPct.toFixed(0)} |`,
  );
  return [`### ${report.name}`, '', report.describe, '', head, rule, ...rows, '', `sustained: ${report.sustainedCps} calls/s (≤ ${FAILED_LIMIT_PCT} % failed)${report.error ? `; stopped: ${report.error}` : ''}`, ''].join('\n');
}

async function benchSystem(system: SystemUnderTest, o: Options, guard: string, dir: string, progress: (m: string) => void): Promise<SystemReport> {
  const report: SystemReport = { name: system.name, describe: '', steps: [], sustainedCps: 0 };
  const calleePort = await freeUdpPort();
  const callee = GuardedChild.spawn({
    cpu: GENERATOR_CPU,
    nice: 0,
    maxSeconds: 3600,
    guard,
    command: SIPP,
    args: ['-sf', join(dir, 'uas.xml'), '-i', '127.0.0.1', '-p', String(calleePort), '-mi', '127.0.0.1', '-mp', String(await freeUdpPort()), '-rtp_echo', '-aa', '-nostdin', '-max_socket', '60000'],
    label: 'sipp callee',
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const running = await system
    .start({ guard, cpu: SYSTEM_CPU, maxSeconds: 3600, portMin: 10000, portMax: 19999, calleePort, probeIntervalMs: o.probeIntervalMs, dir })
    .catch((error: Error) => {
      report.error = error.message;
      return null;
    });
  if (!running) {
    await callee.stop(null);
    return report;
  }
  report.describe = running.describe;
  try {
    for (const rate of o.rates) {
      progress(`${system.name} @ ${rate} calls/s …`);
      const step = await runStep(running, {
        guard,
        cpu: GENERATOR_CPU,
        dir,
        scenario: join(dir, 'uac.xml'),
        calleePort,
        calleePids: () => processTree(callee.pid),
        rate,
        windowS: o.windowS,
        callMs: o.callMs,
        mediaPort: await freeUdpPort(),
      });
      report.steps.push(step);
      progress(`  ${step.succeeded} ok, ${step.failedPct.toFixed(2)} % failed, p50 ${step.p50Ms} ms, p99 ${step.p99Ms} ms, system CPU ${step.systemCpuPct.toFixed(0)} %`);
      if (step.failedPct > FAILED_LIMIT_PCT) {
        if (step.errors) progress(`  SIPp errors:\n${step.errors}`);
        break;
      }
      report.sustainedCps = rate;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    await running.stop();
    await callee.stop(null);
  }
  return report;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const progress = (m: string): void => void process.stderr.write(`${m}\n`);
  if (!existsSync(SIPP)) throw new Error(`${SIPP} not installed (apt-get install sip-tester)`);
  if (availableParallelism() < 2) progress('warning: one CPU: generator and system under test share it');
  execFileSync('taskset', ['-a', '-p', '-c', String(GENERATOR_CPU), String(process.pid)], { stdio: 'ignore' });
  const tools = buildNativeTools();
  const dir = mkdtempSync(join(tmpdir(), 'rtphub-bench-sip-'));
  // SIPp writes its -trace_rtt file into its working directory, and plays silence.alaw from it
  process.chdir(dir);
  writeFileSync(join(dir, 'silence.alaw'), Buffer.alloc(8000, 0xd5));
  for (const f of ['uac.xml', 'uas.xml']) copyFileSync(join(repoRoot(), 'bench', 'load', 'sip', f), join(dir, f));
  const all: SystemUnderTest[] = [new RtphubSystem(), new KamailioRtpengineSystem(o.kamailioChildren)];
  const reports: SystemReport[] = [];
  try {
    for (const system of all.filter((s) => o.systems.includes(s.name))) {
      const reason = system.unavailableReason();
      if (reason) {
        reports.push({ name: system.name, describe: '', steps: [], sustainedCps: 0, error: `skipped: ${reason}` });
        continue;
      }
      reports.push(await benchSystem(system, o, tools.guard, dir, progress));
    }
  } finally {
    process.chdir(repoRoot());
    rmSync(dir, { recursive: true, force: true });
  }
  const machine = `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Linux ${release()}, Node ${process.version}`;
  const out = [
    '## SIP front: calls per second with RTP (npm run bench:sip)',
    '',
    `machine: ${machine}; system under test on CPU ${SYSTEM_CPU}, SIPp caller and callee and this harness on CPU ${GENERATOR_CPU}`,
    `steps of ${o.windowS} s; each call ${o.callMs} ms of PCMA RTP both ways (echoed by the callee) then BYE; a step fails above ${FAILED_LIMIT_PCT} % failed calls`,
    'other CPU %: what processes outside this benchmark used during the step (% of one core): above a few % the figures are disturbed',
    '',
    ...reports.map(table),
  ];
  const hub = reports.find((r) => r.name === 'rtphub');
  const anchor = reports.find((r) => r.name === 'kamailio+rtpengine');
  if (hub && anchor && anchor.sustainedCps > 0) out.push(`rtphub / kamailio+rtpengine sustained calls/s: ${(hub.sustainedCps / anchor.sustainedCps).toFixed(2)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify({ machine, options: o, reports })}\n`);
}

process.on('exit', () => GuardedChild.killAll());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    GuardedChild.killAll();
    process.exit(130);
  });
}

main().catch((error: Error) => {
  process.stderr.write(`bench:sip: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
