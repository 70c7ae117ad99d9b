/**
 * The rtphub relay process of the packet-rate benchmark: starts the engine through the
 * `Relay` facade and speaks the benchmark's line protocol on stdin/stdout (see
 * relays/line-relay.ts): `ready`; "callerPort calleePort" lines up to `end`, answered by
 * {"ports":[[a,b],…]}; `stats` answered by {"stats":{…}}; `quit` or EOF closes
 * everything and exits. Every leg sends to its signalled remote with learning off.
 *
 * usage: rtphub-target --backend io_uring|epoll|af_xdp --port-min N --port-max N [--coalesce-us N]
 *        [--interface IP] [--caller-addr IP] [--callee-addr IP] [--xdp-dev DEV]... [--xdp-frames N]
 *        [--xdp-ring-size N]
 * (namespace mode: the relay's address and the generator's two sides; af_xdp needs --xdp-dev)
 */
import { createInterface } from 'node:readline';
import { Relay, type Stream } from '../../../src/native/relay';
import type { BackendName, RelayOptions } from '../../../src/native/types';

/** Streams created at once: enough to keep the worker's command queue busy. */
const CREATE_BATCH = 64;

interface TargetOptions {
  relay: RelayOptions;
  callerAddress: string;
  calleeAddress: string;
}

function parseArgs(argv: string[]): TargetOptions {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const backend = value('--backend');
  if (backend !== 'io_uring' && backend !== 'epoll' && backend !== 'af_xdp') throw new Error('--backend io_uring|epoll|af_xdp is required');
  const coalesce = value('--coalesce-us');
  const xdpDevices = argv.flatMap((a, i) => (a === '--xdp-dev' && argv[i + 1] !== undefined ? [argv[i + 1]] : []));
  return {
    callerAddress: value('--caller-addr') ?? '127.0.0.1',
    calleeAddress: value('--callee-addr') ?? '127.0.0.1',
    relay: {
      interfaces: [value('--interface') ?? '127.0.0.1'],
      portMin: Number(value('--port-min') ?? 30000),
      portMax: Number(value('--port-max') ?? 40000),
      threads: 1,
      backend: backend satisfies BackendName,
      ...(coalesce === undefined ? {} : { coalesceUs: Number(coalesce) }),
      ...(xdpDevices.length === 0 ? {} : { xdpDevices }),
      ...(value('--xdp-frames') === undefined ? {} : { xdpFrames: Number(value('--xdp-frames')) }),
      ...(value('--xdp-ring-size') === undefined ? {} : { xdpRingSize: Number(value('--xdp-ring-size')) }),
    },
  };
}

function parseCall(line: string): [number, number] {
  const [caller, callee] = line.trim().split(/\s+/).map(Number);
  if (!Number.isInteger(caller) || !Number.isInteger(callee)) throw new Error(`bad call line: ${line}`);
  return [caller, callee];
}

async function createStreams(relay: Relay, calls: Array<[number, number]>, options: TargetOptions): Promise<Stream[]> {
  const streams: Stream[] = [];
  for (let i = 0; i < calls.length; i += CREATE_BATCH) {
    const batch = calls.slice(i, i + CREATE_BATCH).map(([caller, callee]) =>
      relay.createStream({
        a: { remote: { address: options.callerAddress, port: caller }, learning: 'off' },
        b: { remote: { address: options.calleeAddress, port: callee }, learning: 'off' },
      }),
    );
    streams.push(...(await Promise.all(batch)));
  }
  return streams;
}

function reply(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Starts the engine, refusing a silent fallback to another backend than the one measured. */
function startRelay(options: RelayOptions): Relay {
  const relay = Relay.start(options);
  const { backend, backendNote } = relay.info();
  if (backend !== options.backend) {
    void relay.close();
    throw new Error(`asked for the ${options.backend} backend, the engine runs ${backend}: ${backendNote}`);
  }
  return relay;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const relay = startRelay(options.relay);
  const streams: Stream[] = [];
  let pending: Array<[number, number]> = [];
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const command = line.trim();
    if (command === 'quit') break;
    if (command === 'stats') {
      reply({ stats: relay.stats() });
    } else if (command === 'end') {
      streams.push(...(await createStreams(relay, pending, options)));
      pending = [];
      reply({ ports: streams.map((s) => [s.a.localPort, s.b.localPort]) });
    } else if (command !== '') {
      pending.push(parseCall(command));
    }
  }
  await Promise.all(streams.map((s) => s.close()));
  await relay.close();
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rtphub-target: ${message}\n`);
  reply({ error: message });
  process.exit(1);
});
