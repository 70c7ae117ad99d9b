/**
 * `npm run bench -- --netns`: CPU per forwarded packet over real veths, for rtphub's af_xdp,
 * io_uring and epoll backends and for rtpengine, in the same run on the same topology:
 *
 *   A eth0 10.77.1.2 ── xa  R (relay 10.77.0.1 on lo)  xb ── eth0 10.77.2.2 B
 *
 * The generator (rtp-load) opens its caller sockets in A and its callee sockets in B; the relay
 * runs in R (af_xdp with its XDP program on xa and xb, native mode). On veth the receive work of
 * a packet is charged to whoever sends it (or to ksoftirqd), so the figure that compares relays
 * is the whole path: relay + generator + ksoftirqd CPU over the window, per forwarded packet.
 * The harness builds the namespaces, runs itself again inside R (`--inside`), and always deletes
 * them; every child is bounded in time (exec-guard). Windows are short: the whole run is under a
 * minute with the defaults.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpus, release } from 'node:os';
import { GuardedChild } from './child';
import { Generator, type GeneratorResult } from './generator';
import { buildNativeTools } from './native-tools';
import type { LaunchSettings, RelayUnderTest } from './relays/relay';
import { RtpengineRelay } from './relays/rtpengine';
import { RtphubRelay } from './relays/rtphub';

const GENERATOR_CPU = 0;
const RELAY_CPU = 1;
const RELAY_ADDRESS = '10.77.0.1';
const CALLER_ADDRESS = '10.77.1.2';
const CALLEE_ADDRESS = '10.77.2.2';
/** af_xdp here: 64 MiB of UMEM (the harness runs as root, beyond the 8 MiB locked-memory default),
 * 8192 frames per fill ring: on a shared machine the relay's thread can wait tens of ms for its
 * CPU, and at 25 k packets/s per direction the relay's 2048-frame default covers only 80 ms,
 * where the socket backends have every socket's receive buffer. */
const XDP_FRAMES = 32768;
const XDP_RING_SIZE = 8192;

interface NetnsOptions {
  loads: number[];
  xdpFrames: number;
  xdpRingSize: number;
  warmupMs: number;
  windowMs: number;
  relays: string[];
}

function parseNetnsOptions(argv: string[]): NetnsOptions {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (v: string | undefined): string[] => (v ? v.split(',').filter(Boolean) : []);
  return {
    loads: list(value('--loads') ?? '500,1500').map(Number),
    xdpFrames: Number(value('--xdp-frames') ?? XDP_FRAMES),
    xdpRingSize: Number(value('--xdp-ring-size') ?? XDP_RING_SIZE),
    warmupMs: Number(value('--warmup') ?? 1) * 1000,
    windowMs: Number(value('--window') ?? 3) * 1000,
    relays: list(value('--relays')),
  };
}

function ipCommand(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

/** The three namespaces and two veth pairs; returns the namespace names. */
function buildTopology(prefix: string): { a: string; r: string; b: string } {
  const ns = { a: `${prefix}-a`, r: `${prefix}-r`, b: `${prefix}-b` };
  for (const name of Object.values(ns)) {
    ipCommand(['netns', 'add', name]);
    ipCommand(['-n', name, 'link', 'set', 'lo', 'up']);
  }
  ipCommand(['-n', ns.r, 'addr', 'add', `${RELAY_ADDRESS}/32`, 'dev', 'lo']);
  const links = [
    { party: ns.a, dev: 'xa', relay: '10.77.1.1', peer: CALLER_ADDRESS },
    { party: ns.b, dev: 'xb', relay: '10.77.2.1', peer: CALLEE_ADDRESS },
  ];
  for (const l of links) {
    ipCommand(['-n', ns.r, 'link', 'add', l.dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', l.party]);
    ipCommand(['-n', ns.r, 'addr', 'add', `${l.relay}/24`, 'dev', l.dev]);
    ipCommand(['-n', l.party, 'addr', 'add', `${l.peer}/24`, 'dev', 'eth0']);
    ipCommand(['-n', ns.r, 'link', 'set', l.dev, 'up']);
    ipCommand(['-n', l.party, 'link', 'set', 'eth0', 'up']);
    ipCommand(['-n', l.party, 'route', 'add', `${RELAY_ADDRESS}/32`, 'via', l.relay]);
  }
  return ns;
}

function destroyTopology(prefix: string): void {
  for (const side of ['a', 'r', 'b']) {
    try {
      ipCommand(['netns', 'del', `${prefix}-${side}`]);
    } catch {
      // already gone
    }
  }
}

/** Outside: builds the namespaces, runs the measurement inside R, deletes them whatever happens. */
export async function runNetnsBench(argv: string[]): Promise<void> {
  buildNativeTools();
  const prefix = `xdpb${process.pid}`;
  destroyTopology(prefix);
  buildTopology(prefix);
  const child = spawn('ip', ['netns', 'exec', `${prefix}-r`, process.execPath, ...process.execArgv, __filename, '--inside', prefix, ...argv], {
    stdio: 'inherit',
  });
  const stop = (): void => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
    if (code !== 0) process.exitCode = code;
  } finally {
    destroyTopology(prefix);
  }
}

interface Row {
  relay: string;
  calls: number;
  result: GeneratorResult | null;
  counters?: Record<string, number> | null;
  error?: string;
}

/** The relay's own drop counters worth showing next to the generator's loss. */
const DROP_COUNTERS = ['wakeups', 'packets_received', 'drops_stale', 'drops_no_neighbour', 'send_errors', 'buffers_exhausted', 'xdp_rx_dropped', 'xdp_rx_ring_full'];

async function trial(relay: RelayUnderTest, calls: number, prefix: string, options: NetnsOptions, guard: string, binary: string): Promise<Row> {
  const running = await relay.start();
  try {
    const generator = await Generator.start({
      binary,
      guard,
      cpu: GENERATOR_CPU,
      nice: 0,
      calls,
      warmupMs: options.warmupMs,
      windowMs: options.windowMs,
      drainMs: 300,
      relayPid: running.pid,
      extraArgs: [
        '--relay-addr', RELAY_ADDRESS,
        '--caller-netns', `${prefix}-a`, '--caller-addr', CALLER_ADDRESS,
        '--callee-netns', `${prefix}-b`, '--callee-addr', CALLEE_ADDRESS,
      ],
    });
    try {
      const ports = await running.createCalls(generator.calls);
      const result = await generator.run(ports);
      return { relay: relay.name, calls, result, counters: await running.counters() };
    } finally {
      await generator.stop();
    }
  } finally {
    await running.stop();
  }
}

function perPacket(ns: number, packets: number): string {
  return ns < 0 || packets <= 0 ? '-' : (ns / packets).toFixed(0);
}

function render(rows: Row[]): string {
  const header = ['relay', 'calls', 'pps out', 'loss %', 'relay ns/pkt', 'generator ns/pkt', 'ksoftirqd ns/pkt', 'path ns/pkt', 'machine ns/pkt'];
  const lines = [header];
  for (const row of rows) {
    const r = row.result;
    if (!r) {
      lines.push([row.relay, String(row.calls), `failed: ${row.error ?? '?'}`]);
      continue;
    }
    const forwarded = r.forwardedDuringWindow;
    const softirqd = r.softirqdCpuNs ?? -1;
    const path = r.relayRunNs >= 0 && r.generatorCpuNs >= 0 && softirqd >= 0 ? r.relayRunNs + r.generatorCpuNs + softirqd : -1;
    lines.push([
      row.relay,
      String(row.calls),
      r.ppsOut.toFixed(0),
      r.lossPct.toFixed(3),
      perPacket(r.relayRunNs, forwarded),
      perPacket(r.generatorCpuNs, forwarded),
      perPacket(softirqd, forwarded),
      perPacket(path, forwarded),
      perPacket(r.machineBusyNs, forwarded),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const table = lines.map((l) => l.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  const drops = rows.flatMap((row) => {
    const c = row.counters;
    if (!c) return [];
    const nonzero = DROP_COUNTERS.filter((name) => (c[name] ?? 0) > 0).map((name) => `${name}=${c[name]}`);
    return nonzero.length > 0 ? [`${row.relay} at ${row.calls} calls, relay counters since start: ${nonzero.join(' ')}`] : [];
  });
  return [...table, ...(drops.length > 0 ? ['', ...drops] : [])].join('\n');
}

function ratios(rows: Row[]): string[] {
  const path = (row: Row | undefined): number => {
    const r = row?.result;
    if (!r || r.forwardedDuringWindow <= 0) return NaN;
    return (r.relayRunNs + r.generatorCpuNs + (r.softirqdCpuNs ?? 0)) / r.forwardedDuringWindow;
  };
  const out: string[] = [];
  for (const calls of new Set(rows.map((r) => r.calls))) {
    const at = (name: string): Row | undefined => rows.find((r) => r.calls === calls && r.relay === name);
    const xdp = path(at('rtphub af_xdp'));
    for (const other of ['rtphub io_uring', 'rtphub epoll', 'rtpengine']) {
      const o = path(at(other));
      if (Number.isFinite(xdp) && Number.isFinite(o)) out.push(`${calls} calls: af_xdp path CPU / ${other} = ${(xdp / o).toFixed(2)}`);
    }
  }
  return out;
}

/** Inside R: every relay at every load, one fresh relay process per trial. */
async function inside(prefix: string, argv: string[]): Promise<void> {
  const options = parseNetnsOptions(argv);
  execFileSync('taskset', ['-a', '-p', '-c', String(GENERATOR_CPU), String(process.pid)], { stdio: 'ignore' });
  const tools = buildNativeTools();
  const launch: LaunchSettings = {
    guard: tools.guard,
    relayCpu: RELAY_CPU,
    nice: 0,
    maxSeconds: 120,
    portMin: 12000,
    portMax: 31999,
    mediaAddress: RELAY_ADDRESS,
    callerAddress: CALLER_ADDRESS,
    calleeAddress: CALLEE_ADDRESS,
  };
  const all: RelayUnderTest[] = [
    new RtphubRelay({ backend: 'af_xdp', xdpDevices: ['xa', 'xb'], xdpFrames: options.xdpFrames, xdpRingSize: options.xdpRingSize }, launch),
    new RtphubRelay({ backend: 'io_uring' }, launch),
    new RtphubRelay({ backend: 'epoll' }, launch),
    new RtpengineRelay(launch),
  ];
  const relays = options.relays.length === 0 ? all : all.filter((r) => options.relays.some((f) => r.name.includes(f)));
  const rows: Row[] = [];
  for (const calls of options.loads) {
    for (const relay of relays) {
      const unavailable = relay.unavailableReason();
      if (unavailable) {
        rows.push({ relay: relay.name, calls, result: null, error: unavailable });
        continue;
      }
      process.stderr.write(`netns: ${relay.name}, ${calls} calls\n`);
      try {
        rows.push(await trial(relay, calls, prefix, options, tools.guard, tools.generator));
      } catch (err) {
        rows.push({ relay: relay.name, calls, result: null, error: err instanceof Error ? err.message.split('\n')[0] : String(err) });
      }
    }
  }
  const lines = [
    `packet-rate, namespace mode: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Linux ${release()}`,
    `topology: A -- veth -- R (relay) -- veth -- B; generator on CPU ${GENERATOR_CPU} (sockets in A and B), relay on CPU ${RELAY_CPU}, one worker thread`,
    `af_xdp: --xdp-frames=${options.xdpFrames} --xdp-ring-size=${options.xdpRingSize}; all rtphub backends with the default 500 us coalescing window`,
    `window ${options.windowMs / 1000} s after ${options.warmupMs / 1000} s warm-up; 172-byte RTP, 50 packets/s per stream, 2 streams per call`,
    'path = relay + generator + ksoftirqd CPU over the window (the generator also pays the veth receive work it triggers)',
    'machine = all CPUs busy, including anything else running on this machine',
    '',
    render(rows),
    '',
    ...ratios(rows),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[2] === '--inside') {
  process.on('exit', () => GuardedChild.killAll());
  process.on('SIGTERM', () => {
    GuardedChild.killAll();
    process.exit(143);
  });
  inside(process.argv[3] ?? '', process.argv.slice(4)).catch((err: unknown) => {
    process.stderr.write(`netns: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
