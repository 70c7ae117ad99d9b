// Forwarding: RTP and RTCP cross a stream in both directions, leave from the socket of the
// leg facing the receiver, and arrive byte for byte as sent; over IPv4, IPv6 and between them.
import { backendTest } from '../helpers/backends';
import { hasIpv6Loopback } from '../helpers/network';
import { rtcpSenderReport, rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, legRtcpEndpoint, startRelay } from '../helpers/relay';
import { openPartyPair, Party } from '../helpers/udp';

const ports = portBlock(0);

backendTest('forwards RTP both ways with the payload bytes unchanged', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);

  for (let seq = 1; seq <= 5; seq++) {
    const sent = rtp({ seq, ssrc: 0xa, payload: Buffer.from(`a to b #${seq}`) });
    await a.send(sent, legEndpoint(stream, 'a'));
    const got = await b.receive();
    t.deepEqual(got.data, sent);
    t.deepEqual(got.from, legEndpoint(stream, 'b'), 'B hears the relay from the leg facing it');
  }
  for (let seq = 1; seq <= 5; seq++) {
    const sent = rtp({ seq, ssrc: 0xb, payload: Buffer.from(`b to a #${seq}`) });
    await b.send(sent, legEndpoint(stream, 'b'));
    const got = await a.receive();
    t.deepEqual(got.data, sent);
    t.deepEqual(got.from, legEndpoint(stream, 'a'));
  }
});

backendTest('forwards RTCP both ways between the RTCP ports (RTP port + 1)', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: b.rtp.endpoint } });
  t.is(stream.a.rtcpPort, stream.a.localPort + 1);
  t.is(stream.b.rtcpPort, stream.b.localPort + 1);

  const fromA = rtcpSenderReport(0xa1);
  await a.rtcp.send(fromA, legRtcpEndpoint(stream, 'a'));
  const atB = await b.rtcp.receive();
  t.deepEqual(atB.data, fromA);
  t.deepEqual(atB.from, legRtcpEndpoint(stream, 'b'));

  const fromB = rtcpSenderReport(0xb1);
  await b.rtcp.send(fromB, legRtcpEndpoint(stream, 'b'));
  const atA = await a.rtcp.receive();
  t.deepEqual(atA.data, fromB);
  t.deepEqual(atA.from, legRtcpEndpoint(stream, 'a'));
  t.is(a.rtp.pending + b.rtp.pending, 0, 'no RTCP leaked onto the RTP sockets');
});

backendTest('forwards 300 packets each way, in windows of 30, complete and in order', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  // Windows keep the burst within the default socket buffers (~200 KiB), where loopback UDP does not drop.
  const window = 30;
  for (let first = 0; first < 300; first += window) {
    const sentAB = Array.from({ length: window }, (_, i) => rtp({ seq: first + i, ssrc: 0xa }));
    const sentBA = Array.from({ length: window }, (_, i) => rtp({ seq: first + i, ssrc: 0xb }));
    await Promise.all([
      ...sentAB.map((p) => a.send(p, legEndpoint(stream, 'a'))),
      ...sentBA.map((p) => b.send(p, legEndpoint(stream, 'b'))),
    ]);
    for (const sent of sentAB) t.deepEqual((await b.receive()).data, sent);
    for (const sent of sentBA) t.deepEqual((await a.receive()).data, sent);
  }
});

backendTest('keeps streams apart: each stream forwards only between its own parties', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(40));
  const parties = await Promise.all(Array.from({ length: 6 }, () => Party.open(t)));
  const streams = [
    await connect(relay, parties[0], parties[1]),
    await connect(relay, parties[2], parties[3]),
    await connect(relay, parties[4], parties[5]),
  ];
  for (const [i, stream] of streams.entries()) {
    const sent = rtp({ seq: i, ssrc: 0x100 + i });
    await parties[2 * i].send(sent, legEndpoint(stream, 'a'));
    t.deepEqual((await parties[2 * i + 1].receive()).data, sent);
  }
  t.is(parties.reduce((n, p) => n + p.pending, 0), 0, 'no packet reached a party of another stream');
});

const ipv6Test = hasIpv6Loopback ? backendTest : backendTest.skip;

ipv6Test('forwards RTP and RTCP between parties on ::1', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { interfaces: ['::1'] });
  const [a, b] = [await openPartyPair(t, '::1'), await openPartyPair(t, '::1')];
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: b.rtp.endpoint } });
  t.is(stream.a.localAddress, '::1');

  const media = rtp({ seq: 7, ssrc: 0x6 });
  await a.rtp.send(media, legEndpoint(stream, 'a'));
  const got = await b.rtp.receive();
  t.deepEqual(got.data, media);
  t.deepEqual(got.from, legEndpoint(stream, 'b'));

  const report = rtcpSenderReport(0x6);
  await b.rtcp.send(report, legRtcpEndpoint(stream, 'b'));
  t.deepEqual((await a.rtcp.receive()).data, report);
});

ipv6Test('bridges an IPv4 party and an IPv6 party', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { interfaces: ['127.0.0.1', '::1'] });
  const [v4, v6] = [await Party.open(t, '127.0.0.1'), await Party.open(t, '::1')];
  const stream = await relay.createStream({
    a: { remote: v4.endpoint },
    b: { remote: v6.endpoint, localAddress: '::1' },
  });
  t.is(stream.a.localAddress, '127.0.0.1');
  t.is(stream.b.localAddress, '::1');

  const up = rtp({ seq: 1, ssrc: 0x4 });
  await v4.send(up, legEndpoint(stream, 'a'));
  t.deepEqual((await v6.receive()).data, up);
  const down = rtp({ seq: 1, ssrc: 0x6 });
  await v6.send(down, legEndpoint(stream, 'b'));
  t.deepEqual((await v4.receive()).data, down);
});
