/**
 * Runs inside one network namespace of an AF_XDP test (started through `ip netns exec`, which
 * keeps the IPC channel's descriptor) and does what the test process, in the root namespace,
 * cannot do there: hold UDP sockets, and run the relay itself. Requests and answers travel over
 * the IPC channel as `{ id, op, args }` / `{ id, result | error }`.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import { Relay, type Stream } from '../../src/native/relay';
import type { Endpoint, LegOptions, RelayOptions } from '../../src/native/types';

export interface Received {
  data: string; // base64
  from: Endpoint;
}

interface Party {
  socket: dgram.Socket;
  queue: Received[];
  waiters: Array<() => void>;
}

let relay: Relay | null = null;
const learned: Array<{ streamId: number; leg: string; kind: string; endpoint: Endpoint }> = [];
const streams = new Map<number, Stream>();
const parties = new Map<number, Party>();
let nextParty = 1;

function leg(stream: Stream, side: 'a' | 'b'): { address: string; port: number; rtcpPort: number | null } {
  const l = stream[side];
  return { address: l.localAddress, port: l.localPort, rtcpPort: l.rtcpPort };
}

function streamInfo(stream: Stream): { id: number; a: ReturnType<typeof leg>; b: ReturnType<typeof leg> } {
  return { id: stream.id, a: leg(stream, 'a'), b: leg(stream, 'b') };
}

function started(): Relay {
  if (!relay) throw new Error('relay not started');
  return relay;
}

function stream(id: number): Stream {
  const s = streams.get(id);
  if (!s) throw new Error(`no stream ${id}`);
  return s;
}

async function bind(args: { address: string; port?: number }): Promise<{ id: number; port: number }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(args.port ?? 0, args.address, () => resolve());
  });
  const party: Party = { socket, queue: [], waiters: [] };
  socket.on('message', (data, rinfo) => {
    party.queue.push({ data: data.toString('base64'), from: { address: rinfo.address, port: rinfo.port } });
    for (const w of party.waiters.splice(0)) w();
  });
  const id = nextParty++;
  parties.set(id, party);
  return { id, port: socket.address().port };
}

function party(id: number): Party {
  const p = parties.get(id);
  if (!p) throw new Error(`no socket ${id}`);
  return p;
}

async function send(args: { id: number; to: Endpoint; data: string[] }): Promise<void> {
  const p = party(args.id);
  for (const d of args.data) {
    await new Promise<void>((resolve, reject) =>
      p.socket.send(Buffer.from(d, 'base64'), args.to.port, args.to.address, (e) => (e ? reject(e) : resolve())),
    );
  }
}

/** Waits up to `timeoutMs` for `count` datagrams (returns what arrived by then). */
async function receive(args: { id: number; count: number; timeoutMs: number }): Promise<Received[]> {
  const p = party(args.id);
  const deadline = Date.now() + args.timeoutMs;
  while (p.queue.length < args.count && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadline - Date.now());
      p.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return p.queue.splice(0, args.count);
}

/** Creates `count` streams, legs spread over the given local addresses; returns the last one. */
async function createMany(args: { count: number; a: string[]; b: string[]; template: { a: LegOptions; b: LegOptions } }) {
  const r = started();
  let last: Stream | null = null;
  const batch = 1000;
  for (let first = 0; first < args.count; first += batch) {
    const made = await Promise.all(
      Array.from({ length: Math.min(batch, args.count - first) }, (_, k) => {
        const i = first + k;
        return r.createStream({
          a: { ...args.template.a, localAddress: args.a[i % args.a.length] },
          b: { ...args.template.b, localAddress: args.b[i % args.b.length] },
        });
      }),
    );
    for (const s of made) streams.set(s.id, s);
    last = made[made.length - 1];
  }
  return last ? streamInfo(last) : null;
}

const ops: Record<string, (args: never) => unknown> = {
  start: (args: RelayOptions) => {
    relay = Relay.start(args);
    relay.on('learned', (e) => learned.push({ streamId: e.streamId, leg: e.leg, kind: e.kind, endpoint: e.endpoint }));
    return relay.info();
  },
  learned: () => learned.splice(0),
  create: async (args: { a: LegOptions; b: LegOptions }) => {
    const s = await started().createStream(args);
    streams.set(s.id, s);
    return streamInfo(s);
  },
  createMany,
  update: (args: { id: number; a?: Partial<LegOptions>; b?: Partial<LegOptions> }) => stream(args.id).update(args),
  closeStream: async (args: { id: number }) => {
    await stream(args.id).close();
    streams.delete(args.id);
  },
  counters: (args: { id: number }) => stream(args.id).counters(),
  stats: () => started().stats(),
  info: () => started().info(),
  exportStream: async (args: { id: number }) => (await stream(args.id).export()).toString('base64'),
  importStream: async (args: { record: string; standby?: boolean }) => {
    const s = await started().importStream(Buffer.from(args.record, 'base64'), { standby: args.standby ?? false });
    streams.set(s.id, s);
    return streamInfo(s);
  },
  activate: (args: { id: number }) => started().activate(stream(args.id)),
  stop: async () => {
    await relay?.close();
    relay = null;
  },
  bind,
  send,
  receive,
  fds: () => fs.readdirSync('/proc/self/fd').length,
  /** A TCP server that answers each connection with `reply` and closes it. */
  tcpListen: (args: { address: string; port: number; reply: string }) =>
    new Promise<void>((resolve, reject) => {
      const server = net.createServer((c) => c.end(args.reply));
      server.once('error', reject);
      server.listen(args.port, args.address, () => resolve());
    }),
  /** Connects, reads until the server closes, returns what it read. */
  tcpFetch: (args: { address: string; port: number }) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const c = net.connect(args.port, args.address);
      c.setTimeout(3000, () => c.destroy(new Error('timeout')));
      c.on('data', (d) => chunks.push(d));
      c.once('error', reject);
      c.once('close', () => resolve(Buffer.concat(chunks).toString()));
    }),
};

process.on('message', (message: { id: number; op: string; args: unknown }) => {
  const op = ops[message.op];
  Promise.resolve()
    .then(() => (op as (a: unknown) => unknown)(message.args))
    .then(
      (result) => process.send?.({ id: message.id, result: result ?? null }),
      (error: Error) => process.send?.({ id: message.id, error: `${error.name}: ${error.message}` }),
    );
});
process.send?.({ id: 0, result: 'ready' });
