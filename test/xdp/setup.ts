/**
 * Shared set-up of the AF_XDP suites: a lab (see lab.ts) with the relay started on the af_xdp
 * backend over both veths, and a party host in A and in B. Torn down when the test ends.
 */
import test, { type ExecutionContext, type ImplementationFn } from 'ava';
import { Relay, type RelayInfo } from '../../src/native/relay';
import type { LegCounters } from '../../src/native/types';
import { addresses, Host, Lab } from './lab';

/** AF_XDP needs the backend in this build and root (namespaces, XDP, locked memory). */
export const xdpAvailable = Relay.afXdpBuilt && process.getuid?.() === 0;

/** A serial test (namespaces and CPU are shared), skipped where AF_XDP cannot run. */
export function xdpTest(title: string, body: ImplementationFn<[]>): void {
  if (xdpAvailable) test.serial(title, body);
  else test.serial.skip(`${title} (needs root and a build with the AF_XDP backend)`, body);
}

export interface LegAddress {
  address: string;
  port: number;
  rtcpPort: number;  // the tests' legs are never muxed
}

export interface StreamAddress {
  id: number;
  a: LegAddress;
  b: LegAddress;
}

export interface Received {
  data: Buffer;
  from: { address: string; port: number };
}

export class Party {
  constructor(
    readonly host: Host,
    readonly id: number,
    readonly address: string,
    readonly port: number,
  ) {}

  static async open(host: Host, address: string, port?: number): Promise<Party> {
    const bound = await host.call<{ id: number; port: number }>('bind', { address, port });
    return new Party(host, bound.id, address, bound.port);
  }

  get endpoint(): { address: string; port: number } {
    return { address: this.address, port: this.port };
  }

  send(to: { address: string; port: number }, ...data: Buffer[]): Promise<void> {
    return this.host.call('send', { id: this.id, to, data: data.map((d) => d.toString('base64')) });
  }

  async receive(count = 1, timeoutMs = 2000): Promise<Received[]> {
    const got = await this.host.call<Array<{ data: string; from: { address: string; port: number } }>>('receive', {
      id: this.id,
      count,
      timeoutMs,
    });
    return got.map((r) => ({ data: Buffer.from(r.data, 'base64'), from: r.from }));
  }
}

export interface Setup {
  lab: Lab;
  relay: Host;
  a: Host;
  b: Host;
  info: RelayInfo;
}

export const portMin = 20000;
export const portMax = 29999;

export async function setup(
  t: ExecutionContext,
  options: { extra?: { ra?: string[]; rb?: string[] }; relay?: Record<string, unknown>; queues?: number } = {},
): Promise<Setup> {
  const lab = await Lab.create(options.extra, options.queues);
  t.teardown(() => lab.destroy());
  const [relay, a, b] = await Promise.all([lab.host('r'), lab.host('a'), lab.host('b')]);
  const info = await relay.call<RelayInfo>('start', {
    backend: 'af_xdp',
    interfaces: [addresses.ra, ...(options.extra?.ra ?? []), addresses.rb, ...(options.extra?.rb ?? [])],
    portMin,
    portMax,
    threads: 1,
    xdpDevices: ['xa', 'xb'],
    learningWindowMs: 0,
    ...options.relay,
  });
  return { lab, relay, a, b, info };
}

export function rtpOf(seq: number, text: string): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(seq * 160, 4);
  header.writeUInt32BE(0x5eed, 8);
  return Buffer.concat([header, Buffer.from(text)]);
}

/**
 * Sends `packet` until the first copy arrives (the relay resolves each new next hop through the
 * kernel's neighbour table first, and drops until it has it); then drains the copies.
 */
export async function warmUp(from: Party, to: { address: string; port: number }, at: Party, packet: Buffer): Promise<void> {
  for (let i = 0; i < 50; i++) {
    await from.send(to, packet);
    const got = await at.receive(1, 100);
    if (got.length > 0) {
      await at.receive(100, 100);
      return;
    }
  }
  throw new Error(`nothing arrived at ${at.address}:${at.port} through ${to.address}:${to.port}`);
}

export function legCounters(setupHost: Host, id: number): Promise<{ a: LegCounters; b: LegCounters }> {
  return setupHost.call('counters', { id });
}

/**
 * Party A (port 41000) and party B (port 42000) with a stream between them through the relay,
 * warmed up from A to B with `packet` (see warmUp); `legA` is the relay's leg facing A.
 */
export async function warmStream(
  { relay, a, b }: Setup,
  packet: Buffer,
): Promise<{ pa: Party; pb: Party; stream: StreamAddress; legA: { address: string; port: number } }> {
  const [pa, pb] = [await Party.open(a, addresses.a, 41000), await Party.open(b, addresses.b, 42000)];
  const stream = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: pa.endpoint },
    b: { localAddress: addresses.rb, remote: pb.endpoint },
  });
  const legA = { address: stream.a.address, port: stream.a.port };
  await warmUp(pa, legA, pb, packet);
  return { pa, pb, stream, legA };
}
