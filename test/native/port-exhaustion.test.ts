// Port exhaustion: a full pool answers PortsExhaustedError ("Ran out of ports", as rtpengine
// says), a half-allocated stream gives its first leg's ports back, ports bound by someone else
// are skipped, and the relay keeps forwarding afterwards.
import { PortsExhaustedError, RtphubError } from '../../src/errors';
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, startRelay } from '../helpers/relay';
import { Party } from '../helpers/udp';

const ports = portBlock(6);

backendTest('a full pool gives PortsExhaustedError and the relay still works afterwards', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(4));
  t.is(relay.info().portsTotal, 4);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const first = await connect(relay, a, b);

  const error = await t.throwsAsync(relay.createStream({ a: {}, b: {} }), { instanceOf: PortsExhaustedError });
  t.true(error instanceof RtphubError);
  t.is(error?.code, 'ERR_PORTS_EXHAUSTED');
  t.regex(error?.message ?? '', /Ran out of ports/);
  t.is(relay.info().portsInUse, 4);
  t.is(relay.info().streams, 1);

  const packet = rtp({ seq: 1 });
  await a.send(packet, legEndpoint(first, 'a'));
  t.deepEqual((await b.receive()).data, packet, 'the existing stream still forwards');

  await first.close();
  const second = await connect(relay, a, b);
  await b.send(packet, legEndpoint(second, 'b'));
  t.deepEqual((await a.receive()).data, packet, 'a new stream forwards once ports are free');
});

backendTest('a stream that gets ports for one leg only gives them back', async (t, backend) => {
  // Three pairs: the second stream's leg a takes the last pair, its leg b finds none.
  const relay = startRelay(t, backend, ports.take(6));
  await relay.createStream({ a: {}, b: {} });
  t.is(relay.info().portsInUse, 4);
  await t.throwsAsync(relay.createStream({ a: {}, b: {} }), { instanceOf: PortsExhaustedError });
  t.is(relay.info().portsInUse, 4, 'the pair taken for leg a was returned');
  t.is(relay.info().streams, 1);
  const muxed = await relay.createStream({ a: { rtcpMux: true }, b: { rtcpMux: true } }).catch((e: unknown) => e);
  t.true(muxed instanceof PortsExhaustedError, 'rtcp-mux legs still need a whole pair each');
});

backendTest('asking for a port that is taken gives PortsExhaustedError without leaking', async (t, backend) => {
  const range = ports.take(20);
  const relay = startRelay(t, backend, range);
  const first = await relay.createStream({ a: {}, b: {} });
  await t.throwsAsync(relay.createStream({ a: {}, b: { localPort: first.a.localPort } }), {
    instanceOf: PortsExhaustedError,
  });
  t.is(relay.info().portsInUse, 4);
  const chosen = await relay.createStream({ a: { localPort: range.portMax - 1 }, b: {} });
  t.is(chosen.a.localPort, range.portMax - 1, 'a free port can be asked for');
});

backendTest('ports that another program holds are skipped', async (t, backend) => {
  const range = ports.take(8);
  const squatter = await Party.open(t, '127.0.0.1', range.portMin + 1);
  const relay = startRelay(t, backend, range);
  const stream = await relay.createStream({ a: {}, b: {} });
  const used = [stream.a.localPort, stream.b.localPort];
  t.false(used.includes(range.portMin), `the pair of port ${squatter.port} is skipped`);
  t.is(relay.info().portsInUse, 4);
  await t.throwsAsync(relay.createStream({ a: {}, b: {} }), { instanceOf: PortsExhaustedError });
  t.is(relay.info().portsInUse, 4);
});
