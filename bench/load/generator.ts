/**
 * Drives the native traffic generator (bench/load/native/rtp-load.c) for one trial:
 * start it (it binds its sockets and prints their ports), hand it the relay's ports,
 * and collect its JSON result once warm-up, window and drain are over.
 */
import { GuardedChild, portPairs } from './child';
import type { CallEndpoints, RelayPorts } from './relays/relay';

export interface GeneratorSettings {
  binary: string;
  guard: string;
  cpu: number;
  nice: number;
  calls: number;
  warmupMs: number;
  windowMs: number;
  drainMs: number;
  /** The relay whose utime+stime the generator samples at the window edges. */
  relayPid: number;
  /** More rtp-load flags (namespace mode: --caller-netns, --callee-addr, ...). */
  extraArgs?: string[];
}

/** The generator's measurement of one trial (see rtp-load.c for the definitions). */
export interface GeneratorResult {
  calls: number;
  windowS: number;
  sentInWindow: number;
  receivedInWindow: number;
  ppsIn: number;
  ppsOut: number;
  lossPct: number;
  latencyP50Us: number;
  latencyP99Us: number;
  latencyP999Us: number;
  latencyMaxUs: number;
  sendLagP99Us: number;
  sendLagMaxUs: number;
  sendErrors: number;
  badPackets: number;
  misrouted: number;
  duplicates: number;
  forwardedDuringWindow: number;
  /** Relay utime+stime over the window in ns (tick-sampled), or -1 if /proc could not be read. */
  relayCpuNs: number;
  /** Relay scheduler run time over the window in ns (all threads, exact), or -1. */
  relayRunNs: number;
  /** The generator's own utime+stime over the window in ns, or -1. */
  generatorCpuNs: number;
  /** Non-idle time of all CPUs over the window in ns, or -1. */
  machineBusyNs: number;
  /** The ksoftirqd threads' utime+stime over the window in ns, or -1. */
  softirqdCpuNs?: number;
}

const RESULT_FIELDS: ReadonlyArray<keyof GeneratorResult> = [
  'calls', 'windowS', 'sentInWindow', 'receivedInWindow', 'ppsIn', 'ppsOut', 'lossPct',
  'latencyP50Us', 'latencyP99Us', 'latencyP999Us', 'latencyMaxUs', 'sendLagP99Us', 'sendLagMaxUs',
  'sendErrors', 'badPackets', 'misrouted', 'duplicates', 'forwardedDuringWindow', 'relayCpuNs',
  'relayRunNs', 'generatorCpuNs', 'machineBusyNs',
];

/** Time allowed for the relay to set up its calls before the generator gives up. */
const SETUP_ALLOWANCE_S = 180;

export class Generator {
  private constructor(
    private readonly child: GuardedChild,
    private readonly settings: GeneratorSettings,
    readonly calls: CallEndpoints[],
  ) {}

  static async start(settings: GeneratorSettings): Promise<Generator> {
    const runSeconds = (settings.warmupMs + settings.windowMs + settings.drainMs) / 1000;
    const child = GuardedChild.spawn({
      cpu: settings.cpu,
      nice: settings.nice,
      maxSeconds: Math.ceil(runSeconds + SETUP_ALLOWANCE_S),
      guard: settings.guard,
      command: settings.binary,
      args: generatorArgs(settings),
      label: 'generator',
    });
    try {
      const message = await child.readJson(10_000 + settings.calls * 2, 'generator ports');
      const calls = portPairs(message, settings.calls, 'generator').map(([callerPort, calleePort]) => ({ callerPort, calleePort }));
      return new Generator(child, settings, calls);
    } catch (err) {
      await child.stop(null);
      throw err;
    }
  }

  /** Sends the relay's ports, which starts the traffic, and waits for the result. */
  async run(relayPorts: RelayPorts[]): Promise<GeneratorResult> {
    this.child.write(relayPorts.map((p) => `${p.a} ${p.b}\n`).join(''));
    const { warmupMs, windowMs, drainMs } = this.settings;
    const message = await this.child.readJson(warmupMs + windowMs + drainMs + 15_000, 'generator result');
    return toResult(message);
  }

  stop(): Promise<void> {
    return this.child.stop(null, 1000);
  }
}

function generatorArgs(s: GeneratorSettings): string[] {
  return [
    '--calls', String(s.calls),
    '--warmup-ms', String(s.warmupMs),
    '--window-ms', String(s.windowMs),
    '--drain-ms', String(s.drainMs),
    '--relay-pid', String(s.relayPid),
    ...(s.extraArgs ?? []),
  ];
}

function toResult(message: Record<string, unknown>): GeneratorResult {
  const missing = RESULT_FIELDS.filter((field) => typeof message[field] !== 'number');
  if (missing.length > 0) throw new Error(`generator result lacks ${missing.join(', ')}`);
  return message as unknown as GeneratorResult;
}
