// Restoration: a stream exported, closed and imported again (by this relay or another one)
// comes back on the same address and ports with its learned endpoints and counters; imported
// or created on standby it binds its ports but drops (and counts) packets until activated.
import test from 'ava';
import { PortsExhaustedError } from '../../src/errors';
import type { Relay, Stream } from '../../src/native/relay';
import type { BackendName } from '../../src/native/types';
import { backendTest, backends } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { legEndpoint, startRelay, waitForEngineCounter, waitForLegCounter } from '../helpers/relay';
import { canBind, firstToReceive, Party } from '../helpers/udp';
import { nextEvent } from '../helpers/wait';

const ports = portBlock(7);

/** A stream whose leg a has learned party `a` (nothing signalled) and whose leg b sends to `b`. */
async function learnedStream(relay: Relay, a: Party, b: Party): Promise<Stream> {
  const stream = await relay.createStream({ a: { remote: null, learning: 'immediate' }, b: { remote: b.endpoint, learning: 'off' } });
  const learned = nextEvent(relay, 'learned', (e) => e.streamId === stream.id && e.leg === 'a');
  await a.send(rtp({ seq: 1 }), legEndpoint(stream, 'a'));
  await b.receive();
  await learned;
  return stream;
}

backendTest('export, close and import resume forwarding on the same ports with the learned endpoint', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const original = await learnedStream(relay, a, b);
  const record = await original.export();
  t.true(Buffer.isBuffer(record));
  await original.close();
  t.is(relay.info().portsInUse, 0);

  const restored = await relay.importStream(record);
  t.like(restored.a, { localAddress: original.a.localAddress, localPort: original.a.localPort, rtcpPort: original.a.rtcpPort });
  t.like(restored.b, { localAddress: original.b.localAddress, localPort: original.b.localPort, rtcpPort: original.b.rtcpPort });
  t.is(relay.info().portsInUse, 4);

  const toA = rtp({ seq: 2, ssrc: 0xb });
  await b.send(toA, legEndpoint(restored, 'b'));
  t.deepEqual((await a.receive()).data, toA, 'leg a still sends to the endpoint it had learned');
  const toB = rtp({ seq: 3, ssrc: 0xa });
  await a.send(toB, legEndpoint(restored, 'a'));
  t.deepEqual((await b.receive()).data, toB);

  t.like(restored.counters().a, { rtp_packets_in: 2, last_seq: 3, packets_out: 1 });
});

backendTest('a restored latch stays locked: a new source does not take over', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b, intruder] = [await Party.open(t), await Party.open(t), await Party.open(t)];
  const original = await learnedStream(relay, a, b);
  const record = await original.export();
  await original.close();
  const restored = await relay.importStream(record);
  await intruder.send(rtp({ seq: 2 }), legEndpoint(restored, 'a'));
  await b.receive();
  await b.send(rtp({ seq: 3 }), legEndpoint(restored, 'b'));
  t.deepEqual((await firstToReceive([a, intruder])).party.endpoint, a.endpoint);
});

// Both pairings of backends, so a record written on one packet loop is read back on the other.
for (const [exporting, importing] of [[backends[0], backends[1]], [backends[1], backends[0]]] as Array<[BackendName, BackendName]>) {
  test(`a record exported by an ${exporting} relay is taken over by an ${importing} relay`, async (t) => {
    const range = ports.take(20);
    const [a, b] = [await Party.open(t), await Party.open(t)];
    const first = startRelay(t, exporting, range);
    const original = await learnedStream(first, a, b);
    const record = await original.export();
    await first.close();
    t.true(await canBind(original.a.localPort), 'the first relay let go of its ports');

    const second = startRelay(t, importing, range);
    const restored = await second.importStream(record);
    const packet = rtp({ seq: 2 });
    await b.send(packet, legEndpoint(restored, 'b'));
    t.deepEqual((await a.receive()).data, packet);
  });
}

backendTest('importing a record whose ports are in use gives PortsExhaustedError', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: {}, b: {} });
  const record = await stream.export();
  await t.throwsAsync(relay.importStream(record), { instanceOf: PortsExhaustedError });
  t.is(relay.info().portsInUse, 4);
  t.is(relay.info().streams, 1);
});

backendTest('an imported standby stream binds its ports but drops until activated', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const original = await learnedStream(relay, a, b);
  const record = await original.export();
  await original.close();

  const standby = await relay.importStream(record, { standby: true });
  t.false(await canBind(standby.a.localPort), 'the standby stream holds its ports');
  for (let seq = 10; seq < 13; seq++) await a.send(rtp({ seq }), legEndpoint(standby, 'a'));
  t.is((await waitForLegCounter(standby, 'a', 'drops_standby', 3)).drops_standby, 3);
  await waitForEngineCounter(relay, 'drops_standby', 3);
  t.is(b.pending, 0, 'nothing was forwarded on standby');

  await relay.activate(standby);
  const packet = rtp({ seq: 20 });
  await a.send(packet, legEndpoint(standby, 'a'));
  t.deepEqual((await b.receive()).data, packet, 'activated, it forwards');
  await b.send(packet, legEndpoint(standby, 'b'));
  t.deepEqual((await a.receive()).data, packet, 'to the learned endpoint too');
});

backendTest('activate() without a stream activates every standby stream', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(40));
  const parties = await Promise.all(Array.from({ length: 6 }, () => Party.open(t)));
  const streams = await Promise.all(
    [0, 1, 2].map((i) =>
      relay.createStream({ a: { remote: parties[2 * i].endpoint }, b: { remote: parties[2 * i + 1].endpoint }, standby: true }),
    ),
  );
  await parties[0].send(rtp({ seq: 1 }), legEndpoint(streams[0], 'a'));
  await waitForLegCounter(streams[0], 'a', 'drops_standby', 1);

  await relay.activate();
  for (const [i, stream] of streams.entries()) {
    const packet = rtp({ seq: 2, ssrc: i });
    await parties[2 * i].send(packet, legEndpoint(stream, 'a'));
    t.deepEqual((await parties[2 * i + 1].receive()).data, packet, `stream ${i} forwards`);
  }
});

backendTest('activating one stream leaves the other standby streams dropping', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const parties = await Promise.all(Array.from({ length: 4 }, () => Party.open(t)));
  const [one, other] = await Promise.all(
    [0, 1].map((i) => relay.createStream({ a: { remote: parties[2 * i].endpoint }, b: { remote: parties[2 * i + 1].endpoint }, standby: true })),
  );
  await relay.activate(one);
  await parties[2].send(rtp({ seq: 1 }), legEndpoint(other, 'a'));
  await waitForLegCounter(other, 'a', 'drops_standby', 1);
  const packet = rtp({ seq: 2 });
  await parties[0].send(packet, legEndpoint(one, 'a'));
  t.deepEqual((await parties[1].receive()).data, packet);
  t.is(parties[3].pending, 0);
});

// A latch that was tentative when exported keeps its endpoint but starts a fresh learning window
// on the importing relay (record.cc read_latch), instead of locking on the first packet.
backendTest('an imported tentative latch gets a fresh learning window', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { learningWindowMs: 10_000 });
  const [first, second, third, b] = [await Party.open(t), await Party.open(t), await Party.open(t), await Party.open(t)];
  const original = await relay.createStream({ a: { remote: null, learning: 'delayed' }, b: { remote: b.endpoint, learning: 'off' } });
  await first.send(rtp({ seq: 1 }), legEndpoint(original, 'a'));
  await b.receive();
  const record = await original.export();
  await original.close();

  const restored = await relay.importStream(record);
  for (const [seq, source] of [second, third].entries()) {
    await source.send(rtp({ seq: 10 + seq }), legEndpoint(restored, 'a'));
    await b.receive();
  }
  await b.send(rtp({ seq: 20 }), legEndpoint(restored, 'b'));
  const { party } = await firstToReceive([first, second, third]);
  t.deepEqual(party.endpoint, third.endpoint, 'within the window the latest source is used');
});
