// Counters: per leg and per engine they match exactly what the parties sent (packets, bytes,
// the last SSRC and sequence number), summed over streams and workers, under the names of the
// single C++ counter list.
import { Relay, type Stream } from '../../src/native/relay';
import { backendTest } from '../helpers/backends';
import { rtcpSenderReport, rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, legRtcpEndpoint, startRelay } from '../helpers/relay';
import { openPartyPair, Party } from '../helpers/udp';
import { waitFor } from '../helpers/wait';

const ports = portBlock(5);

const sum = (packets: Buffer[]): number => packets.reduce((n, p) => n + p.length, 0);

backendTest('leg and engine counters match the packets and bytes sent', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const stream = await relay.createStream({ a: { remote: a.rtp.endpoint }, b: { remote: b.rtp.endpoint } });

  const media = Array.from({ length: 10 }, (_, i) => rtp({ seq: 100 + i, ssrc: 0xfeedbeef, payload: Buffer.alloc(20 + 10 * i, i) }));
  for (const packet of media) {
    await a.rtp.send(packet, legEndpoint(stream, 'a'));
    await b.rtp.receive();
  }
  const reports = Array.from({ length: 4 }, (_, i) => rtcpSenderReport(0xb0b, i + 1));
  for (const packet of reports) {
    await b.rtcp.send(packet, legRtcpEndpoint(stream, 'b'));
    await a.rtcp.receive();
  }

  const { a: legA, b: legB } = stream.counters();
  t.like(legA, {
    rtp_packets_in: 10,
    rtp_bytes_in: sum(media),
    rtcp_packets_in: 0,
    rtcp_bytes_in: 0,
    packets_out: 4,
    bytes_out: sum(reports),
    nonrtp_packets_in: 0,
    drops_source: 0,
    drops_no_destination: 0,
    drops_standby: 0,
    drops_malformed: 0,
    drops_send: 0,
    last_ssrc: 0xfeedbeef,
    last_seq: 109,
  });
  t.like(legB, {
    rtp_packets_in: 0,
    rtp_bytes_in: 0,
    rtcp_packets_in: 4,
    rtcp_bytes_in: sum(reports),
    packets_out: 10,
    bytes_out: sum(media),
    last_ssrc: 0,
    last_seq: 0,
  });
  t.true(legA.last_packet_ms > 0);
  t.true(legB.last_packet_ms >= legA.last_packet_ms, 'B sent last');

  t.like(relay.stats(), {
    packets_received: 14,
    bytes_received: sum(media) + sum(reports),
    packets_forwarded: 14,
    bytes_forwarded: sum(media) + sum(reports),
    packets_dropped: 0,
    drops_malformed: 0,
    drops_oversize: 0,
    drops_source: 0,
    drops_no_destination: 0,
    drops_standby: 0,
    drops_stale: 0,
    send_errors: 0,
    streams: 1,
    sockets: 4,
  });
});

backendTest('last_seq and last_ssrc follow sequence wrap-around and SSRC changes', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  const steps: Array<[number, number]> = [
    [65534, 0x1],
    [65535, 0x1],
    [0, 0x1],
    [1, 0xffffffff],
  ];
  for (const [seq, ssrc] of steps) {
    await a.send(rtp({ seq, ssrc }), legEndpoint(stream, 'a'));
    await b.receive();
    t.like(stream.counters().a, { last_seq: seq, last_ssrc: ssrc });
  }
});

backendTest('reception counters: expected and lost per RFC 3550, across reordering and an SSRC change', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  const send = async (seq: number, ssrc: number) => {
    await a.send(rtp({ seq, ssrc }), legEndpoint(stream, 'a'));
    await b.receive();
  };
  const missing = new Set([15, 16, 17, 22, 25]);
  for (let seq = 65530; seq !== 10; seq = (seq + 1) & 0xffff) await send(seq, 7); // 16 packets, wrapping
  for (let seq = 10; seq < 30; seq++) if (!missing.has(seq)) await send(seq, 7);
  t.like(stream.counters().a, { rtp_expected: 36, rtp_lost: 5 });
  await send(16, 7); // late, not newer: fills a hole
  t.like(stream.counters().a, { rtp_expected: 36, rtp_lost: 4 });
  for (let seq = 1000; seq < 1005; seq++) await send(seq, 8);
  t.like(stream.counters().a, { rtp_expected: 41, rtp_lost: 4, last_ssrc: 8, last_seq: 1004 });
  t.like(stream.counters().b, { rtp_expected: 0, rtp_lost: 0 });
});

backendTest('the jitter counter follows RFC 3550 at the leg\'s clock rate, and is off at clock rate 0', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const parties = await Promise.all(Array.from({ length: 6 }, () => Party.open(t)));
  const streams = [
    await relay.createStream({ a: { remote: parties[0].endpoint }, b: { remote: parties[1].endpoint } }),
    await relay.createStream({ a: { remote: parties[2].endpoint, clockRate: 48000 }, b: { remote: parties[3].endpoint } }),
    await relay.createStream({ a: { remote: parties[4].endpoint, clockRate: 0 }, b: { remote: parties[5].endpoint } }),
  ];
  // Ten packets sent back to back whose timestamps say 200 ms apart: each transit differs from
  // the last by about 200 ms, so J = 200 ms * (1 - (15/16)^9) = 88 ms (arrival spread of a
  // loaded machine moves it by a few ms at most).
  const spacing = [1600, 9600, 1600];
  for (const [i, stream] of streams.entries()) {
    for (let k = 0; k < 10; k++) {
      await parties[2 * i].send(rtp({ seq: k, timestamp: k * spacing[i] }), legEndpoint(stream, 'a'));
      await parties[2 * i + 1].receive();
    }
  }
  const jitterMs = (stream: Stream, rate: number) => (stream.counters().a.jitter_q4 / 16 / rate) * 1000;
  const expected = 200 * (1 - (15 / 16) ** 9);
  t.true(Math.abs(jitterMs(streams[0], 8000) - expected) < 25, `8 kHz: ${jitterMs(streams[0], 8000)} ms`);
  t.true(Math.abs(jitterMs(streams[1], 48000) - expected) < 25, `48 kHz: ${jitterMs(streams[1], 48000)} ms`);
  t.is(streams[2].counters().a.jitter_q4, 0);
  // An update changes the clock rate the counter uses.
  await streams[2].update({ a: { clockRate: 8000 } });
  for (let k = 10; k < 20; k++) {
    await parties[4].send(rtp({ seq: k, timestamp: k * 1600 }), legEndpoint(streams[2], 'a'));
    await parties[5].receive();
  }
  t.true(jitterMs(streams[2], 8000) > 40, `after the update: ${jitterMs(streams[2], 8000)} ms`);
});

backendTest('engine counters are summed over every stream and worker', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(40));
  t.is(relay.threads, 2);
  const parties = await Promise.all(Array.from({ length: 8 }, () => Party.open(t)));
  const streams: Stream[] = [];
  for (let i = 0; i < 4; i++) streams.push(await connect(relay, parties[2 * i], parties[2 * i + 1]));
  let bytes = 0;
  for (const [i, stream] of streams.entries()) {
    for (let k = 0; k <= i; k++) {
      const packet = rtp({ seq: k, ssrc: i });
      bytes += packet.length;
      await parties[2 * i].send(packet, legEndpoint(stream, 'a'));
      await parties[2 * i + 1].receive();
    }
  }
  for (const [i, stream] of streams.entries()) t.is(stream.counters().a.rtp_packets_in, i + 1);
  t.like(relay.stats(), { packets_received: 10, bytes_received: bytes, packets_forwarded: 10, streams: 4, sockets: 16 });
});

backendTest('counter objects carry exactly the names of the C++ counter lists', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: {}, b: {} });
  const legNames = [...Relay.legCounterNames].sort();
  t.deepEqual(Object.keys(stream.counters().a).sort(), legNames);
  t.deepEqual(Object.keys(stream.counters().b).sort(), legNames);
  t.deepEqual(Object.keys(relay.stats()).sort(), [...Relay.engineCounterNames].sort());
  for (const name of ['rtp_packets_in', 'rtp_bytes_in', 'packets_out', 'last_ssrc', 'last_seq', 'drops_source']) {
    t.true(legNames.includes(name), name);
  }
  t.true(Object.values(stream.counters().a).every((v) => v === 0), 'a new stream counts nothing');
});

backendTest('a destination the leg cannot send to counts send errors on that leg', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const a = await Party.open(t);
  // Leg b has an IPv4 socket: an IPv6 destination makes every send fail.
  const stream = await relay.createStream({ a: { remote: a.endpoint }, b: { remote: { address: '::1', port: 9 }, learning: 'off' } });
  for (let seq = 0; seq < 3; seq++) await a.send(rtp({ seq }), legEndpoint(stream, 'a'));
  await waitFor(() => stream.counters().b.drops_send >= 3, 'three failed sends');
  t.like(stream.counters(), { a: { rtp_packets_in: 3, drops_send: 0 }, b: { drops_send: 3 } });
  t.is(relay.stats().send_errors, 3);
});
