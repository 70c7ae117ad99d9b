// No destination: a packet for a party whose endpoint is neither signalled nor learned yet is
// dropped and counted (drops_no_destination, on the leg it arrived on and engine-wide); once
// that party is learned, the same direction forwards.
import { backendTest } from '../helpers/backends';
import { rtcpSenderReport, rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { legEndpoint, legRtcpEndpoint, startRelay, waitForEngineCounter, waitForLegCounter } from '../helpers/relay';
import { openPartyPair, Party } from '../helpers/udp';
import { nextEvent } from '../helpers/wait';

const ports = portBlock(10);

backendTest('RTP towards a party with no known endpoint is dropped and counted', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({ a: { remote: a.endpoint }, b: { remote: null, learning: 'immediate' } });
  for (let seq = 1; seq <= 3; seq++) await a.send(rtp({ seq }), legEndpoint(stream, 'a'));

  const counters = await waitForLegCounter(stream, 'a', 'drops_no_destination', 3);
  t.like(counters, { drops_no_destination: 3, rtp_packets_in: 3 });
  t.is(stream.counters().b.packets_out, 0);
  await waitForEngineCounter(relay, 'drops_no_destination', 3);
  t.like(relay.stats(), { drops_no_destination: 3, packets_dropped: 3, packets_forwarded: 0 });

  const learned = nextEvent(relay, 'learned', (e) => e.leg === 'b');
  const hello = rtp({ seq: 1, ssrc: 0xb });
  await b.send(hello, legEndpoint(stream, 'b'));
  t.deepEqual((await a.receive()).data, hello);
  t.deepEqual((await learned).endpoint, b.endpoint);

  const packet = rtp({ seq: 4 });
  await a.send(packet, legEndpoint(stream, 'a'));
  t.deepEqual((await b.receive()).data, packet, 'once B is learned, A reaches it');
  t.is(stream.counters().a.drops_no_destination, 3);
});

backendTest('RTCP towards a party with no known endpoint is dropped and counted', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const a = await openPartyPair(t);
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: null } });
  await a.rtcp.send(rtcpSenderReport(0xa), legRtcpEndpoint(stream, 'a'));
  t.like(await waitForLegCounter(stream, 'a', 'drops_no_destination', 1), { drops_no_destination: 1, rtcp_packets_in: 1 });
  t.is(relay.stats().packets_forwarded, 0);
});

backendTest('a remote set to null by update() stops forwarding to that party', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({ a: { remote: a.endpoint, learning: 'off' }, b: { remote: b.endpoint, learning: 'off' } });
  await a.send(rtp({ seq: 1 }), legEndpoint(stream, 'a'));
  await b.receive();
  await stream.update({ b: { remote: null } });
  await a.send(rtp({ seq: 2 }), legEndpoint(stream, 'a'));
  t.is((await waitForLegCounter(stream, 'a', 'drops_no_destination', 1)).drops_no_destination, 1);
  t.is(b.pending, 0);
});
