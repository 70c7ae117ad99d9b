// Stream.update(): a new signalled endpoint redirects the media (RTP and RTCP) sent to a party,
// and rtcp-mux can be switched on and off on a live leg.
import type { Stream } from '../../src/native/relay';
import type { Endpoint } from '../../src/native/types';
import { backendTest } from '../helpers/backends';
import { rtcpSenderReport, rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { legEndpoint, legRtcpEndpoint, startRelay, waitForLegCounter } from '../helpers/relay';
import { firstToReceive, openPartyPair, Party } from '../helpers/udp';
import { nextEvent, waitFor } from '../helpers/wait';

const ports = portBlock(3);

/** Sends an RTP packet from `b` into leg b and returns which candidate party received it. */
async function whereDoesBSend(stream: Stream, b: Party, candidates: Party[], seq: number): Promise<Endpoint> {
  const packet = rtp({ seq, ssrc: 0xb });
  await b.send(packet, legEndpoint(stream, 'b'));
  const { party, datagram } = await firstToReceive(candidates);
  if (!datagram.data.equals(packet)) throw new Error('a party received something else than the packet sent');
  return party.endpoint;
}

backendTest('a new remote endpoint redirects RTP and RTCP (learning off)', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [before, after, b] = [await openPartyPair(t), await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({
    a: { remote: before.rtp.endpoint, learning: 'off' },
    b: { remote: b.rtp.endpoint, learning: 'off' },
  });
  t.deepEqual(await whereDoesBSend(stream, b.rtp, [before.rtp, after.rtp], 1), before.rtp.endpoint);

  await stream.update({ a: { remote: after.rtp.endpoint } });
  t.deepEqual(await whereDoesBSend(stream, b.rtp, [before.rtp, after.rtp], 2), after.rtp.endpoint);

  const report = rtcpSenderReport(0xb);
  await b.rtcp.send(report, legRtcpEndpoint(stream, 'b'));
  const { party, datagram } = await firstToReceive([before.rtcp, after.rtcp]);
  t.deepEqual(party.endpoint, after.rtcp.endpoint, 'RTCP follows to the new RTP port + 1');
  t.deepEqual(datagram.data, report);

  await after.rtp.send(rtp({ seq: 9 }), legEndpoint(stream, 'a'));
  t.is((await b.rtp.receive()).data.readUInt16BE(2), 9, 'the other direction is untouched');
});

backendTest('a new remote endpoint redirects a leg that has not learned anything yet', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [before, after, b] = [await Party.open(t), await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({ a: { remote: before.endpoint }, b: { remote: b.endpoint, learning: 'off' } });
  t.deepEqual(await whereDoesBSend(stream, b, [before, after], 1), before.endpoint);
  await stream.update({ a: { remote: after.endpoint } });
  t.deepEqual(await whereDoesBSend(stream, b, [before, after], 2), after.endpoint);
});

// A re-offer that moves a party (transfer, re-INVITE to another device) redirects its media even
// after its source was learned, as rtpengine does when the advertised endpoint changes.
backendTest('a new remote endpoint redirects a leg that has already learned its source', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [before, after, b] = [await Party.open(t), await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({
    a: { remote: before.endpoint, learning: 'immediate' },
    b: { remote: b.endpoint, learning: 'off' },
  });
  const learned = nextEvent(relay, 'learned', (e) => e.leg === 'a');
  await before.send(rtp({ seq: 1 }), legEndpoint(stream, 'a'));
  await b.receive();
  await learned;

  await stream.update({ a: { remote: after.endpoint } });
  t.deepEqual(await whereDoesBSend(stream, b, [before, after], 2), after.endpoint);
});

backendTest('switching rtcp-mux on makes the RTP socket carry RTCP and keeps the RTCP socket as a fallback', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({
    a: { remote: a.rtp.endpoint, learning: 'off' },
    b: { remote: b.rtp.endpoint, learning: 'off' },
  });
  t.is(relay.stats().sockets, 4);

  await stream.update({ a: { rtcpMux: true } });
  t.is(relay.stats().sockets, 4, 'the RTCP socket stays, as rtpengine keeps its fallback RTCP port');

  const fallback = rtcpSenderReport(0xc);
  await a.rtcp.send(fallback, { address: stream.a.localAddress, port: stream.a.localPort + 1 });
  t.deepEqual((await b.rtcp.receive()).data, fallback, 'RTCP still sent to the fallback port is forwarded');

  const fromA = rtcpSenderReport(0xa);
  await a.rtp.send(fromA, legEndpoint(stream, 'a'));
  t.deepEqual((await b.rtcp.receive()).data, fromA, "A's muxed RTCP reaches B's RTCP port");
  t.is((await waitForLegCounter(stream, 'a', 'rtcp_packets_in', 2)).rtcp_packets_in, 2);

  const fromB = rtcpSenderReport(0xb);
  await b.rtcp.send(fromB, legRtcpEndpoint(stream, 'b'));
  const atA = await a.rtp.receive();
  t.deepEqual(atA.data, fromB, "B's RTCP reaches A on its RTP port");
  t.deepEqual(atA.from, legEndpoint(stream, 'a'));
  t.is(a.rtcp.pending, 0);
});

backendTest('switching rtcp-mux off opens the RTCP socket on RTP port + 1', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({
    a: { remote: a.rtp.endpoint, learning: 'off', rtcpMux: true },
    b: { remote: b.rtp.endpoint, learning: 'off' },
  });
  t.is(relay.stats().sockets, 3);

  await stream.update({ a: { rtcpMux: false, remote: a.rtp.endpoint } });
  t.is(relay.stats().sockets, 4);
  const aRtcp = { address: stream.a.localAddress, port: stream.a.localPort + 1 };

  const fromB = rtcpSenderReport(0xb);
  await b.rtcp.send(fromB, legRtcpEndpoint(stream, 'b'));
  const atA = await a.rtcp.receive();
  t.deepEqual(atA.data, fromB, "B's RTCP reaches A's RTCP port");
  t.deepEqual(atA.from, aRtcp, 'from the new RTCP socket of leg a');

  const fromA = rtcpSenderReport(0xa);
  await a.rtcp.send(fromA, aRtcp);
  t.deepEqual((await b.rtcp.receive()).data, fromA);

  const media = rtp({ seq: 4 });
  await a.rtp.send(media, legEndpoint(stream, 'a'));
  t.deepEqual((await b.rtp.receive()).data, media);
});

backendTest('rtcp-mux can be switched on and off again repeatedly', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({
    a: { remote: a.rtp.endpoint, learning: 'off' },
    b: { remote: b.rtp.endpoint, learning: 'off' },
  });
  for (let round = 0; round < 3; round++) {
    await stream.update({ a: { rtcpMux: true } });
    await stream.update({ a: { rtcpMux: false, remote: a.rtp.endpoint } });
  }
  await waitFor(() => relay.stats().sockets === 4, 'four sockets again');
  const report = rtcpSenderReport(0xa);
  await a.rtcp.send(report, { address: stream.a.localAddress, port: stream.a.localPort + 1 });
  t.deepEqual((await b.rtcp.receive()).data, report);
  await stream.close();
  t.is(relay.info().portsInUse, 0);
  await waitFor(() => relay.stats().sockets === 0, 'every socket closed');
});

// After update() switches rtcp-mux, the stream's LegInfo describes the new state (rtcpPort).
backendTest('LegInfo.rtcpPort follows rtcp-mux switched by update()', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: { rtcpMux: true }, b: {} });
  await stream.update({ a: { rtcpMux: false }, b: { rtcpMux: true } });
  t.is(stream.a.rtcpPort, stream.a.localPort + 1);
  t.is(stream.b.rtcpPort, null);
});
