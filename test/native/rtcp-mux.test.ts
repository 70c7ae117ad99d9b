// rtcp-mux (RFC 5761): a muxed leg has one socket; RTCP on it is told apart by packet type
// (194..223, as rtpengine does), counted as RTCP, and leaves a non-muxed leg through that leg's
// RTCP socket towards its RTCP endpoint.
import { backendTest } from '../helpers/backends';
import { rtcpOfType, rtcpSenderReport, rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { legEndpoint, legRtcpEndpoint, startRelay, waitForLegCounter } from '../helpers/relay';
import { openPartyPair, Party } from '../helpers/udp';

const ports = portBlock(1);

backendTest('with rtcp-mux on both legs, RTP and RTCP share one socket and RTCP is counted as RTCP', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({
    a: { remote: a.endpoint, rtcpMux: true },
    b: { remote: b.endpoint, rtcpMux: true },
  });
  t.is(stream.a.rtcpPort, null);
  t.is(stream.b.rtcpPort, null);

  const report = rtcpSenderReport(0xa);
  await a.send(report, legEndpoint(stream, 'a'));
  const got = await b.receive();
  t.deepEqual(got.data, report);
  t.deepEqual(got.from, legEndpoint(stream, 'b'), 'RTCP leaves through the muxed RTP socket');

  const media = rtp({ seq: 3, ssrc: 0xa });
  await a.send(media, legEndpoint(stream, 'a'));
  t.deepEqual((await b.receive()).data, media);

  const counters = await waitForLegCounter(stream, 'a', 'rtp_packets_in', 1);
  t.is(counters.rtcp_packets_in, 1);
  t.is(counters.rtcp_bytes_in, report.length);
  t.is(counters.rtp_packets_in, 1);
  t.is(counters.rtp_bytes_in, media.length);
  t.is(counters.last_seq, 3, 'RTCP did not overwrite the RTP sequence number');
});

backendTest('demuxes packet types 194..223 as RTCP and 192, 193, 224 as RTP', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await relay.createStream({
    a: { remote: a.endpoint, rtcpMux: true },
    b: { remote: b.endpoint, rtcpMux: true },
  });
  const asRtcp = [194, 200, 201, 206, 223];
  const asRtp = [192, 193, 224];
  for (const type of [...asRtcp, ...asRtp]) {
    const packet = rtcpOfType(type);
    await a.send(packet, legEndpoint(stream, 'a'));
    t.deepEqual((await b.receive()).data, packet, `type ${type} is forwarded unchanged`);
  }
  const counters = stream.counters().a;
  t.is(counters.rtcp_packets_in, asRtcp.length);
  t.is(counters.rtp_packets_in, asRtp.length);
});

backendTest('a muxed leg sends RTCP for a non-muxed leg out of its RTCP socket to its RTCP endpoint', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const a = await Party.open(t);
  const b = await openPartyPair(t);
  const stream = await relay.createStream({
    a: { remote: a.endpoint, rtcpMux: true },
    b: { remote: b.rtp.endpoint },
  });

  const report = rtcpSenderReport(0xa);
  await a.send(report, legEndpoint(stream, 'a'));
  const rtcpAtB = await b.rtcp.receive();
  t.deepEqual(rtcpAtB.data, report);
  t.deepEqual(rtcpAtB.from, legRtcpEndpoint(stream, 'b'), 'from the RTCP port of leg b');

  const media = rtp({ seq: 1, ssrc: 0xa });
  await a.send(media, legEndpoint(stream, 'a'));
  const rtpAtB = await b.rtp.receive();
  t.deepEqual(rtpAtB.data, media);
  t.deepEqual(rtpAtB.from, legEndpoint(stream, 'b'));

  const answer = rtcpSenderReport(0xb);
  await b.rtcp.send(answer, legRtcpEndpoint(stream, 'b'));
  const rtcpAtA = await a.receive();
  t.deepEqual(rtcpAtA.data, answer);
  t.deepEqual(rtcpAtA.from, legEndpoint(stream, 'a'), 'into the muxed socket of leg a');

  t.is((await waitForLegCounter(stream, 'a', 'rtcp_packets_in', 1)).rtcp_packets_in, 1);
  t.is((await waitForLegCounter(stream, 'b', 'rtcp_packets_in', 1)).rtcp_packets_in, 1);
  t.is(b.rtp.pending + b.rtcp.pending + a.pending, 0);
});

backendTest('without rtcp-mux, an RTCP-typed packet on the RTP port is forwarded as RTP', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: b.rtp.endpoint } });
  const report = rtcpSenderReport(0xa);
  await a.rtp.send(report, legEndpoint(stream, 'a'));
  t.deepEqual((await b.rtp.receive()).data, report);
  const counters = stream.counters().a;
  t.is(counters.rtp_packets_in, 1);
  t.is(counters.rtcp_packets_in, 0);
  t.is(b.rtcp.pending, 0);
});
