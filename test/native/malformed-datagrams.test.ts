// Garbage on a media port: empty, 1-byte and other non-RTP datagrams are forwarded unchanged
// (as rtpengine does) and counted as non-RTP; oversize datagrams (beyond the ~2 KB receive
// buffers) are dropped and counted; nothing crashes and forwarding goes on afterwards.
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, legRtcpEndpoint, startRelay, waitForEngineCounter, waitForLegCounter } from '../helpers/relay';
import { openPartyPair, Party } from '../helpers/udp';
import { waitFor } from '../helpers/wait';

const ports = portBlock(9);

const maxUdpPayload = 65507;

backendTest('empty, 1-byte and non-RTP datagrams are forwarded unchanged and counted as non-RTP', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  const garbage = [
    Buffer.alloc(0),
    Buffer.from([0x80]),
    Buffer.from('not RTP at all, just text'),
    Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, ...Array(12).fill(7)]), // a STUN binding request header
    Buffer.alloc(11, 0x80), // version 2, one byte short of an RTP header
  ];
  for (const datagram of garbage) {
    await a.send(datagram, legEndpoint(stream, 'a'));
    t.deepEqual((await b.receive()).data, datagram, `${datagram.length} bytes`);
  }
  const counters = stream.counters().a;
  t.is(counters.nonrtp_packets_in, garbage.length);
  t.is(counters.drops_malformed, 0);
  t.is(counters.last_ssrc, 0, 'garbage sets no SSRC');
  t.is(relay.stats().packets_forwarded, garbage.length);

  const packet = rtp({ seq: 5 });
  await a.send(packet, legEndpoint(stream, 'a'));
  t.deepEqual((await b.receive()).data, packet, 'RTP still flows');
});

backendTest('garbage on the RTCP port is forwarded to the RTCP endpoint', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: b.rtp.endpoint } });
  for (const datagram of [Buffer.alloc(0), Buffer.from([1])]) {
    await a.rtcp.send(datagram, legRtcpEndpoint(stream, 'a'));
    t.deepEqual((await b.rtcp.receive()).data, datagram);
  }
});

backendTest('a 64 KiB datagram is dropped and counted, and forwarding goes on', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  await a.send(Buffer.alloc(maxUdpPayload, 0x80), legEndpoint(stream, 'a'));
  await waitForEngineCounter(relay, 'drops_oversize', 1);
  t.like(relay.stats(), { drops_oversize: 1, packets_dropped: 1, packets_forwarded: 0 });
  t.is((await waitForLegCounter(stream, 'a', 'drops_malformed', 1)).drops_malformed, 1);
  t.is(b.pending, 0);

  const packet = rtp({ seq: 1 });
  await a.send(packet, legEndpoint(stream, 'a'));
  t.deepEqual((await b.receive()).data, packet);
});

backendTest('datagrams up to 2000 bytes pass and larger ones (2100 bytes) are dropped', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  for (const size of [1200, 1500, 2000]) {
    const packet = rtp({ seq: size, payload: Buffer.alloc(size - 12, 0x33) });
    await a.send(packet, legEndpoint(stream, 'a'));
    t.deepEqual((await b.receive()).data, packet, `${size} bytes pass`);
  }
  await a.send(Buffer.alloc(2100, 0x80), legEndpoint(stream, 'a'));
  t.is((await waitForLegCounter(stream, 'a', 'drops_malformed', 1)).drops_malformed, 1);
  t.is(relay.stats().drops_oversize, 1);
});

backendTest('a seeded flood of random datagrams leaves the relay forwarding', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const count = 300;
  let oversize = 0;
  for (let i = 0; i < count; i++) {
    const size = random() < 0.1 ? 2100 + Math.floor(random() * (maxUdpPayload - 2100)) : Math.floor(random() * 1400);
    const datagram = Buffer.alloc(size);
    for (let k = 0; k < size; k++) datagram[k] = Math.floor(random() * 256);
    await a.send(datagram, legEndpoint(stream, 'a'));
    await b.send(datagram.subarray(0, Math.min(size, 1400)), legEndpoint(stream, 'b'));
    // Pace the flood so no socket buffer overflows (that loss would be the kernel's, not the relay's):
    // wait out each oversize datagram (a few fill a buffer), and let Node read what arrived.
    if (size > 2048) await waitForEngineCounter(relay, 'drops_oversize', ++oversize);
    if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor(() => {
    const s = relay.stats();
    return s.packets_received + s.drops_oversize === 2 * count;
  }, 'every datagram to be handled');
  t.is(relay.stats().drops_oversize, oversize);
  t.is(stream.counters().a.drops_malformed, oversize);

  // Forwarded garbage may still be on its way to B: read past it to the RTP packet sent last.
  const packet = rtp({ seq: 1, ssrc: 0x600d });
  await a.send(packet, legEndpoint(stream, 'a'));
  const deadline = Date.now() + 2000;
  let found = false;
  while (!found && Date.now() < deadline) found = (await b.receive(deadline - Date.now()).catch(() => ({ data: Buffer.alloc(0) }))).data.equals(packet);
  t.true(found, 'RTP still flows after the flood');
});
