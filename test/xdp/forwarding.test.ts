// AF_XDP forwarding in real namespaces on real veths (native XDP, copy mode): RTP and RTCP both
// ways with the payload unchanged and the relay's leg address as the source, with and without
// the UDP checksum, the backend reporting what it chose, and devices with several queues (two
// devices, xa and xb, share one XSK map under their own keys).
import { addresses } from './lab';
import { Party, rtpOf, setup, warmUp, type StreamAddress, xdpTest } from './setup';

xdpTest('forwards RTP and RTCP both ways, payload unchanged, from the leg facing the receiver', async (t) => {
  const { relay, a, b, info } = await setup(t);
  t.is(info.backend, 'af_xdp');
  t.regex(info.backendNote, /xa \(native XDP, 1 queue\).*xb \(native XDP, 1 queue\)/);
  t.regex(info.backendNote, /copy mode|zero-copy/);
  const [aRtp, aRtcp] = [await Party.open(a, addresses.a, 41000), await Party.open(a, addresses.a, 41001)];
  const [bRtp, bRtcp] = [await Party.open(b, addresses.b, 42000), await Party.open(b, addresses.b, 42001)];
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: aRtp.endpoint },
    b: { localAddress: addresses.rb, remote: bRtp.endpoint },
  });
  const legA = { address: s.a.address, port: s.a.port };
  const legB = { address: s.b.address, port: s.b.port };
  await warmUp(aRtp, legA, bRtp, rtpOf(0, 'warm'));
  await warmUp(bRtp, legB, aRtp, rtpOf(0, 'warm'));

  for (let seq = 1; seq <= 5; seq++) {
    const sent = rtpOf(seq, `a to b #${seq}`);
    await aRtp.send(legA, sent);
    const [got] = await bRtp.receive();
    t.deepEqual(got?.data, sent);
    t.deepEqual(got?.from, legB);
  }
  const back = rtpOf(9, 'b to a');
  await bRtp.send(legB, back);
  const [atA] = await aRtp.receive();
  t.deepEqual(atA?.data, back);
  t.deepEqual(atA?.from, legA);

  const sr = Buffer.from('80c8000600005eed0123456789abcdef0000000000000001000000a0', 'hex');
  await aRtcp.send({ address: s.a.address, port: s.a.rtcpPort }, sr);
  const [rtcpAtB] = await bRtcp.receive();
  t.deepEqual(rtcpAtB?.data, sr);
  t.deepEqual(rtcpAtB?.from, { address: s.b.address, port: s.b.rtcpPort });
  await bRtcp.send({ address: s.b.address, port: s.b.rtcpPort }, sr);
  const [rtcpAtA] = await aRtcp.receive();
  t.deepEqual(rtcpAtA?.data, sr);
  t.deepEqual(rtcpAtA?.from, { address: s.a.address, port: s.a.rtcpPort });
  t.is((await bRtp.receive(1, 100)).length + (await aRtp.receive(1, 100)).length, 0, 'no RTCP on the RTP ports');

  const counters = await relay.call<{ a: Record<string, number>; b: Record<string, number> }>('counters', { id: s.id });
  t.true(counters.a.rtp_packets_in >= 6);
  t.is(counters.a.rtcp_packets_in, 1);
  t.is(counters.b.rtcp_packets_in, 1);
});

xdpTest('with the UDP checksum off the receiver still takes the packets (checksum 0 on IPv4)', async (t) => {
  const { relay, a, b } = await setup(t, { relay: { xdpUdpChecksum: false } });
  const [pa, pb] = [await Party.open(a, addresses.a), await Party.open(b, addresses.b)];
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: pa.endpoint },
    b: { localAddress: addresses.rb, remote: pb.endpoint },
  });
  await warmUp(pa, { address: s.a.address, port: s.a.port }, pb, rtpOf(1, 'x'));
  const sent = rtpOf(2, 'no checksum');
  await pa.send({ address: s.a.address, port: s.a.port }, sent);
  t.deepEqual((await pb.receive())[0]?.data, sent);
});

xdpTest('devices with 4 queues get a socket per queue and forward every flow', async (t) => {
  const { relay, a, b, info } = await setup(t, { queues: 4 });
  t.regex(info.backendNote, /xa \(native XDP, 4 queues\).*xb \(native XDP, 4 queues\)/);
  const pb = await Party.open(b, addresses.b, 42000);
  const senders: Party[] = [];
  const streams: StreamAddress[] = [];
  for (let i = 0; i < 16; i++) {
    const pa = await Party.open(a, addresses.a, 41000 + 2 * i);
    senders.push(pa);
    streams.push(
      await relay.call<StreamAddress>('create', {
        a: { localAddress: addresses.ra, remote: pa.endpoint },
        b: { localAddress: addresses.rb, remote: pb.endpoint },
      }),
    );
  }
  await warmUp(senders[0], { address: streams[0].a.address, port: streams[0].a.port }, pb, rtpOf(0, 'warm'));
  for (let i = 0; i < 16; i++) await senders[i].send({ address: streams[i].a.address, port: streams[i].a.port }, rtpOf(i + 1, `flow ${i}`));
  const got = await pb.receive(16, 2000);
  t.deepEqual(
    got.map((r) => r.data.subarray(12).toString()).sort(),
    Array.from({ length: 16 }, (_, i) => `flow ${i}`).sort(),
  );
});
