// Typed errors: malformed arguments are InvalidArgumentError (from the facade or the engine),
// anything asked of a closed relay is ClosedError, and both are RtphubErrors with stable codes.
import test, { type ExecutionContext } from 'ava';
import { ClosedError, InvalidArgumentError, RtphubError } from '../../src/errors';
import { Relay } from '../../src/native/relay';
import type { BackendName, LearningMode, StreamOptions } from '../../src/native/types';
import { backendTest } from '../helpers/backends';
import { portBlock, type PortRange } from '../helpers/ports';
import { startRelay } from '../helpers/relay';

const ports = portBlock(12);

async function rejectsInvalid(t: ExecutionContext, relay: Relay, options: StreamOptions, what: string): Promise<void> {
  const error = await t.throwsAsync(relay.createStream(options), { instanceOf: InvalidArgumentError }, what);
  t.is(error?.code, 'ERR_INVALID_ARGUMENT', what);
  t.is(relay.info().portsInUse, 0, `${what}: no port kept`);
}

function startInvalid(t: ExecutionContext, backend: BackendName, range: PortRange, options: Parameters<typeof Relay.start>[0], what: string): void {
  const error = t.throws(() => Relay.start({ ...range, threads: 1, backend, ...options }), { instanceOf: InvalidArgumentError }, what);
  t.true(error instanceof RtphubError, what);
}

backendTest('invalid stream arguments are InvalidArgumentErrors', async (t, backend) => {
  const range = ports.take(20);
  const relay = startRelay(t, backend, range);
  await rejectsInvalid(t, relay, { a: { localPort: range.portMin + 1 }, b: {} }, 'odd localPort');
  await rejectsInvalid(t, relay, { a: { localPort: 1.5 }, b: {} }, 'fractional localPort');
  await rejectsInvalid(t, relay, { a: { learning: 'bogus' as LearningMode }, b: {} }, 'unknown learning mode');
  await rejectsInvalid(t, relay, { a: {}, b: { localAddress: '127.0.0.2' } }, 'address not on the relay interfaces');
  await rejectsInvalid(t, relay, { a: { localAddress: '::1' }, b: {} }, 'IPv6 address on an IPv4-only relay');
  await rejectsInvalid(t, relay, { a: { remote: { address: '127.0.0.1', port: 70000 } }, b: {} }, 'remote port above 65535');
  await rejectsInvalid(t, relay, { a: { remote: { address: '127.0.0.1', port: -1 } }, b: {} }, 'negative remote port');
  await rejectsInvalid(t, relay, { a: {}, b: { remoteRtcp: { address: '127.0.0.1', port: 1.5 } } }, 'fractional RTCP port');
  await rejectsInvalid(t, relay, { a: { clockRate: -8000 }, b: {} }, 'negative clock rate');
  await rejectsInvalid(t, relay, { a: { clockRate: 8000.5 }, b: {} }, 'fractional clock rate');
  await rejectsInvalid(t, relay, { a: {}, b: { clockRate: 2_000_000 } }, 'clock rate above 1 MHz');
  t.is(relay.info().streams, 0);
});

backendTest('invalid relay options are InvalidArgumentErrors', (t, backend) => {
  const range = ports.take(20);
  startInvalid(t, backend, range, { portMin: range.portMax, portMax: range.portMin }, 'portMin > portMax');
  startInvalid(t, backend, range, { portMax: 70000 }, 'portMax above 65535');
  startInvalid(t, backend, range, { threads: -1 }, 'negative threads');
  startInvalid(t, backend, range, { idleTimeoutMs: 0.5 }, 'fractional idle timeout');
  startInvalid(t, backend, range, { interfaces: [] }, 'no interface');
  startInvalid(t, backend, range, { interfaces: ['not-an-address'] }, 'interface that is not an IP address');
  startInvalid(t, backend, range, { portMin: range.portMin, portMax: range.portMin }, 'a range without a port pair');
  startInvalid(t, backend, range, { threads: 65 }, 'more than 64 threads');
});

test('an unknown backend name is an InvalidArgumentError', (t) => {
  t.throws(() => Relay.start({ ...ports.take(20), threads: 1, backend: 'kqueue' as BackendName }), { instanceOf: InvalidArgumentError });
});

// Malformed legs are refused by the facade (nativeLeg) with InvalidArgumentError before they
// reach the addon, whose own checks would only throw plain TypeErrors.
const leaks: Array<[string, StreamOptions]> = [
  ["learning mode 'toString'", { a: { learning: 'toString' as LearningMode }, b: {} }],
  ['remote address that is not an IP address', { a: { remote: { address: 'nonsense', port: 5000 } }, b: {} }],
  ['localAddress that is not an IP address', { a: { localAddress: 'localhost' }, b: {} }],
  ['even localPort above 65535', { a: { localPort: 70000 }, b: {} }],
];
for (const [what, options] of leaks) {
  backendTest(`${what} is an InvalidArgumentError, not a TypeError`, async (t, backend) => {
    const relay = startRelay(t, backend, ports.take(20));
    await t.throwsAsync(relay.createStream(options), { instanceOf: InvalidArgumentError });
  });
}

backendTest('a closed relay answers ClosedError and close is idempotent', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: {}, b: {} });
  const record = await stream.export();
  const closing = relay.close();
  t.is(relay.close(), closing, 'a second close returns the same promise');
  await closing;
  t.true(relay.closed);
  t.true(stream.closed, 'closing the relay closed its streams');

  const closed = { instanceOf: ClosedError, code: 'ERR_CLOSED' };
  await t.throwsAsync(relay.createStream({ a: {}, b: {} }), closed);
  await t.throwsAsync(relay.importStream(record), closed);
  await t.throwsAsync(relay.activate(), closed);
  t.throws(() => relay.stats(), closed);
  t.throws(() => relay.info(), closed);
  await t.throwsAsync(stream.update({ a: { remote: null } }), closed);
  await t.throwsAsync(stream.export(), closed);
  await stream.close();
  await relay.close();
  t.true(Object.values(stream.counters().a).every((v) => v === 0), "a closed relay's streams read as zeros");
});

backendTest('a relay can be closed before any stream was created', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  await relay.close();
  t.throws(() => relay.stats(), { instanceOf: ClosedError });
});
