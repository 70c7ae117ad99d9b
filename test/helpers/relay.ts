/**
 * Relays for the data-plane tests: started on one backend and one port slice, closed by the
 * test's teardown (closing is idempotent, so a test may close earlier itself), plus the small
 * look-ups most tests need.
 */
import type { ExecutionContext } from 'ava';
import { Relay, type Stream } from '../../src/native/relay';
import type { BackendName, Endpoint, LegCounters, RelayOptions } from '../../src/native/types';
import type { PortRange } from './ports';
import type { Party } from './udp';
import { waitFor } from './wait';

/** A relay with two worker threads (the machine has two cores) on `backend`, closed at teardown. */
export function startRelay(t: ExecutionContext, backend: BackendName, ports: PortRange, options: RelayOptions = {}): Relay {
  const relay = Relay.start({ threads: 2, ...options, ...ports, backend });
  t.teardown(() => relay.close());
  t.is(relay.backend, backend, 'the relay runs the backend the test asked for');
  return relay;
}

/** A stream whose legs send to parties `a` and `b` (their endpoints signalled, learning off unless given). */
export function connect(relay: Relay, a: Party, b: Party, learning: 'off' | 'delayed' = 'off'): Promise<Stream> {
  return relay.createStream({ a: { remote: a.endpoint, learning }, b: { remote: b.endpoint, learning } });
}

/** The relay-side RTP endpoint of a leg, where its party sends. */
export function legEndpoint(stream: Stream, side: 'a' | 'b'): Endpoint {
  return { address: stream[side].localAddress, port: stream[side].localPort };
}

/** The relay-side RTCP endpoint of a non-muxed leg. */
export function legRtcpEndpoint(stream: Stream, side: 'a' | 'b'): Endpoint {
  const port = stream[side].rtcpPort;
  if (port === null) throw new Error(`leg ${side} is muxed: it has no RTCP port`);
  return { address: stream[side].localAddress, port };
}

/** Waits until a leg counter reaches `atLeast` (counters are written by the worker, read here). */
export async function waitForLegCounter(
  stream: Stream,
  side: 'a' | 'b',
  name: string,
  atLeast: number,
  timeoutMs = 2000,
): Promise<LegCounters> {
  await waitFor(() => (stream.counters()[side][name] ?? 0) >= atLeast, `leg ${side} ${name} >= ${atLeast}`, timeoutMs);
  return stream.counters()[side];
}

/** Waits until an engine counter reaches `atLeast`. */
export async function waitForEngineCounter(relay: Relay, name: string, atLeast: number, timeoutMs = 2000): Promise<void> {
  await waitFor(() => (relay.stats()[name] ?? 0) >= atLeast, `engine ${name} >= ${atLeast}`, timeoutMs);
}
