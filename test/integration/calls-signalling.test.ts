// The call model over real sockets, driven as Kamailio drives rtpengine: rtphub started in-process
// (`start(config, log)`), ng commands through NgClient over UDP, media through the relay between
// two parties on loopback. Offer/answer/query/delete with RTP both ways, re-offers, m= lines added
// and rejected, the rtcp-mux outcomes in the SDP and in forwarding, ICE removal, `replace`, and a
// retransmitted offer. Each test runs its own relay on its own slice of 47100..47699 (ng on an
// ephemeral port), so the tests of this file run side by side.
import test, { ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import { BEncodable, PlainValue, decode, encode, toPlain } from '../../src/ng/bencode';
import { MediaSummary, summarizeSdp } from '../../src/sdp/parse';
import { rtcpSenderReport, rtp } from '../helpers/packets';
import { Dict, Rtphub, startRtphub } from '../helpers/rtphub';
import { openPartyPair, Party, PartyPair } from '../helpers/udp';

const MEDIA_BASE = 47100;
const MEDIA_SLICE = 40;
const RELAY = '127.0.0.1';

/** rtphub with its own media port slice; stopped when the test ends. */
function startOwnRtphub(t: ExecutionContext, slot: number, flags: string[] = []): Promise<Rtphub> {
  const portMin = MEDIA_BASE + slot * MEDIA_SLICE;
  return startRtphub(t, portMin, portMin + MEDIA_SLICE - 1, flags);
}

interface SdpOptions {
  session?: string;
  sessionName?: string;
  mux?: boolean;
  lines?: string[];
  /** Port of a second (video) m= line; 0 rejects it. */
  video?: number;
}

function sdp(port: number, o: SdpOptions = {}): string {
  const lines = [
    'v=0',
    `o=- ${o.session ?? '1'} 1 IN IP4 127.0.0.1`,
    `s=${o.sessionName ?? '-'}`,
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=sendrecv',
    ...(o.mux ? ['a=rtcp-mux'] : []),
    ...(o.lines ?? []),
  ];
  if (o.video !== undefined) lines.push(`m=video ${o.video} RTP/AVP 96`, 'a=rtpmap:96 H264/90000', 'a=sendrecv');
  return `${lines.join('\r\n')}\r\n`;
}

/** One m= line of the SDP in an offer or answer reply (which must have succeeded). */
function media(reply: Dict, index = 0): MediaSummary {
  if (reply.result !== 'ok') throw new Error(`ng command failed: ${JSON.stringify(reply)}`);
  return summarizeSdp(String(reply.sdp)).media[index];
}

function dig(value: PlainValue | undefined, ...path: Array<string | number>): PlainValue | undefined {
  let v = value;
  for (const key of path) {
    if (v === undefined || typeof v !== 'object') return undefined;
    v = Array.isArray(v) ? v[key as number] : v[key as string];
  }
  return v;
}

const relayAt = (port: number) => ({ address: RELAY, port });

/** Offer from A (from-tag `caller`) and answer from B (to-tag `callee`). */
async function call(h: Rtphub, callId: string, a: PartyPair, b: PartyPair, offer: SdpOptions = {}, answer: SdpOptions = {}, extra: Record<string, BEncodable> = {}) {
  const o = await h.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', sdp: sdp(a.rtp.port, offer), ...extra });
  const ans = await h.request({ command: 'answer', 'call-id': callId, 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port, { session: '2', ...answer }) });
  return { offer: o, answer: ans, toB: media(o), toA: media(ans) };
}

test('offer, answer, RTP both ways unchanged, counters in query rise, delete frees the ports', async (t) => {
  const h = await startOwnRtphub(t, 0);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const { toA, toB } = await call(h, 'c-basic', a, b);
  t.is(toA.connection?.address, RELAY);
  t.is(toB.connection?.address, RELAY);
  t.is(h.portsInUse(), 4, 'an RTP and an RTCP port per side');

  for (let seq = 1; seq <= 5; seq++) {
    const fromA = rtp({ seq, ssrc: 0xa });
    const fromB = rtp({ seq, ssrc: 0xb });
    await a.rtp.send(fromA, relayAt(toA.port));
    await b.rtp.send(fromB, relayAt(toB.port));
    const atB = await b.rtp.receive();
    const atA = await a.rtp.receive();
    t.deepEqual(atB.data, fromA, 'payload unchanged A to B');
    t.deepEqual(atA.data, fromB, 'payload unchanged B to A');
    t.deepEqual(atB.from, relayAt(toB.port), 'B hears the relay on the port it was offered');
    t.deepEqual(atA.from, relayAt(toA.port));
  }

  const q = await h.request({ command: 'query', 'call-id': 'c-basic' });
  t.is(q.result, 'ok');
  t.deepEqual(dig(q, 'totals', 'RTP'), { packets: 10, bytes: 10 * 172, errors: 0 });
  t.is(dig(q, 'tags', 'caller', 'medias', 0, 'streams', 0, 'stats', 'packets'), 5);
  t.is(dig(q, 'tags', 'caller', 'medias', 0, 'streams', 0, 'SSRC'), 0xa);
  t.is(dig(q, 'tags', 'callee', 'medias', 0, 'streams', 0, 'local port'), toB.port);
  t.is(dig(q, 'tags', 'caller', 'medias', 0, 'codec'), 'PCMU/8000');

  const d = await h.request({ command: 'delete', 'call-id': 'c-basic', 'from-tag': 'caller', 'delete-delay': 0 });
  t.is(d.result, 'ok');
  t.deepEqual(dig(d, 'totals', 'RTP'), { packets: 10, bytes: 10 * 172, errors: 0 }, 'the delete reply has the final stats');
  t.is(h.portsInUse(), 0);
  t.deepEqual(await h.request({ command: 'query', 'call-id': 'c-basic' }), { result: 'error', 'error-reason': 'Unknown call-id' });
});

test('a re-offer keeps the ports, a new m= line gets new ports, port 0 frees them', async (t) => {
  const h = await startOwnRtphub(t, 1);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const first = await call(h, 'c-reoffer', a, b);
  const reoffer = await h.request({ command: 'offer', 'call-id': 'c-reoffer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.rtp.port) });
  t.is(media(reoffer).port, first.toB.port, 're-offer: same port towards B');
  const reanswer = await h.request({ command: 'answer', 'call-id': 'c-reoffer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port, { session: '2' }) });
  t.is(media(reanswer).port, first.toA.port, 're-answer: same port towards A');
  t.is(h.portsInUse(), 4);

  const withVideo = await h.request({ command: 'offer', 'call-id': 'c-reoffer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.rtp.port, { video: a.rtp.port + 10 }) });
  t.is(media(withVideo, 0).port, first.toB.port, 'audio keeps its port');
  const video = media(withVideo, 1);
  t.not(video.port, 0);
  t.false([first.toA.port, first.toB.port].includes(video.port), 'video gets ports of its own');
  t.is(h.portsInUse(), 8);
  const videoAnswer = await h.request({ command: 'answer', 'call-id': 'c-reoffer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port, { session: '2', video: b.rtp.port + 10 }) });
  t.not(media(videoAnswer, 1).port, 0);

  const rejected = await h.request({ command: 'offer', 'call-id': 'c-reoffer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.rtp.port, { video: 0 }) });
  t.is(media(rejected, 1).port, 0, 'a rejected m= line stays rejected');
  t.is(media(rejected, 0).port, first.toB.port);
  t.is(h.portsInUse(), 4, 'port 0 frees the video ports');

  const fromA = rtp({ seq: 9 });
  await a.rtp.send(fromA, relayAt(first.toA.port));
  t.deepEqual((await b.rtp.receive()).data, fromA, 'audio still flows');
});

test('rtcp-mux on both sides: offered and answered, RTCP shares the RTP port both ways', async (t) => {
  const h = await startOwnRtphub(t, 2);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const { toA, toB } = await call(h, 'c-mux', a, b, { mux: true }, { mux: true });
  t.true(toB.rtcpMux, 'mux offered on to B');
  t.is(toB.rtcp?.port, toB.port + 1, 'with the RTCP port as fallback (RFC 5761)');
  t.true(toA.rtcpMux, 'mux answered to A');
  t.is(toA.rtcpEndpoint?.port, toA.port);

  const report = rtcpSenderReport(0xa);
  await a.rtp.send(report, relayAt(toA.port));
  const got = await b.rtp.receive();
  t.deepEqual(got.data, report, 'A RTCP on the RTP port reaches B on its RTP port');
  t.deepEqual(got.from, relayAt(toB.port));
  const back = rtcpSenderReport(0xb);
  await b.rtp.send(back, relayAt(toB.port));
  t.deepEqual((await a.rtp.receive()).data, back);
  const q = await h.request({ command: 'query', 'call-id': 'c-mux' });
  t.deepEqual(dig(q, 'tags', 'caller', 'medias', 0, 'flags'), ['initialized', 'send', 'recv', 'rtcp-mux']);
  t.deepEqual((dig(q, 'tags', 'caller', 'medias', 0, 'streams', 0, 'flags') as string[]).slice(0, 2), ['RTP', 'RTCP'], 'the RTP stream carries RTCP');
  t.deepEqual(dig(q, 'tags', 'caller', 'medias', 0, 'streams', 0, 'stats'), { packets: 1, bytes: report.length, errors: 0 });
});

test('rtcp-mux demux: the offerer muxes, the answerer gets separate RTCP, the relay converts', async (t) => {
  const h = await startOwnRtphub(t, 3);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const { toA, toB } = await call(h, 'c-demux', a, b, { mux: true }, {}, { 'rtcp-mux': ['demux'] });
  t.false(toB.rtcpMux, 'no mux offered on to B');
  t.is(toB.rtcpEndpoint?.port, toB.port + 1);
  t.true(toA.rtcpMux, "A's mux is accepted");

  const report = rtcpSenderReport(0xa);
  await a.rtp.send(report, relayAt(toA.port));
  const atB = await b.rtcp.receive();
  t.deepEqual(atB.data, report, "A's muxed RTCP reaches B's RTCP port");
  t.deepEqual(atB.from, relayAt(toB.port + 1), 'from the relay RTCP port');
  t.is(b.rtp.pending, 0);

  const back = rtcpSenderReport(0xb);
  await b.rtcp.send(back, relayAt(toB.port + 1));
  const atA = await a.rtp.receive();
  t.deepEqual(atA.data, back, "B's RTCP reaches A muxed on its RTP port");
  t.deepEqual(atA.from, relayAt(toA.port));
});

test('rtcp-mux offer: the relay offers mux to the answerer although the offerer does not mux', async (t) => {
  const h = await startOwnRtphub(t, 4);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const { toA, toB } = await call(h, 'c-mux-offer', a, b, {}, { mux: true }, { 'rtcp-mux': ['offer'] });
  t.true(toB.rtcpMux);
  t.false(toA.rtcpMux, 'A never offered mux: it does not get it');
  t.is(toA.rtcpEndpoint?.port, toA.port + 1);

  const report = rtcpSenderReport(0xa);
  await a.rtcp.send(report, relayAt(toA.port + 1));
  t.deepEqual((await b.rtp.receive()).data, report, "A's RTCP reaches B muxed");
  const back = rtcpSenderReport(0xb);
  await b.rtp.send(back, relayAt(toB.port));
  const atA = await a.rtcp.receive();
  t.deepEqual(atA.data, back, "B's muxed RTCP reaches A's RTCP port");
  t.deepEqual(atA.from, relayAt(toA.port + 1));
});

test('rtcp-mux accept and reject decide the offerer side whatever the answerer says', async (t) => {
  const h = await startOwnRtphub(t, 5);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const accepted = await call(h, 'c-accept', a, b, { mux: true }, {}, { 'rtcp-mux': ['accept'] });
  t.true(accepted.toB.rtcpMux, 'mux passed on to B');
  t.true(accepted.toA.rtcpMux, 'accepted towards A although B declined it');
  const report = rtcpSenderReport(0xa);
  await a.rtp.send(report, relayAt(accepted.toA.port));
  t.deepEqual((await b.rtcp.receive()).data, report, "B, not muxing, gets A's RTCP on its RTCP port");

  const rejected = await call(h, 'c-reject', a, b, { mux: true }, { mux: true }, { 'rtcp-mux': ['reject'] });
  t.false(rejected.toA.rtcpMux, 'rejected towards A although B accepted it');
  t.is(rejected.toA.rtcpEndpoint?.port, rejected.toA.port + 1);
  const again = rtcpSenderReport(0xc);
  await a.rtcp.send(again, relayAt(rejected.toA.port + 1));
  t.deepEqual((await b.rtp.receive()).data, again, "A's RTCP on the RTCP port reaches B muxed");
});

test('ICE remove strips candidates and credentials', async (t) => {
  const h = await startOwnRtphub(t, 6);
  const a = await openPartyPair(t);
  const ice = ['a=ice-ufrag:F7gI', 'a=ice-pwd:x9cml/YzichV2+XlhiMu8g', `a=candidate:1 1 UDP 2130706431 127.0.0.1 ${a.rtp.port} typ host`];
  const o = await h.request({ command: 'offer', 'call-id': 'c-ice', 'from-tag': 'caller', sdp: sdp(a.rtp.port, { lines: ice }), ICE: 'remove' });
  const body = String(o.sdp);
  t.false(/a=(candidate|ice-ufrag|ice-pwd)/.test(body), body);
  t.false(media(o).ice);
  const q = await h.request({ command: 'query', 'call-id': 'c-ice' });
  t.true((dig(q, 'tags', 'caller', 'medias', 0, 'flags') as string[]).includes('ICE'), "the offerer's ICE is reported");
});

test('replace origin and session-name: the relay address in o=, the first s= kept', async (t) => {
  const h = await startOwnRtphub(t, 7);
  const [a, b] = [await openPartyPair(t), await openPartyPair(t)];
  const replace = ['origin', 'session-name'];
  const first = await h.request({ command: 'offer', 'call-id': 'c-replace', 'from-tag': 'caller', sdp: sdp(a.rtp.port, { sessionName: 'first' }).replace('IN IP4 127.0.0.1\r\ns=', 'IN IP4 192.0.2.1\r\ns='), replace });
  const s1 = summarizeSdp(String(first.sdp));
  t.is(s1.origin.address, RELAY, 'o= carries the relay address');
  t.is(s1.sessionName, 'first');
  await h.request({ command: 'answer', 'call-id': 'c-replace', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.rtp.port, { session: '2' }), replace });
  const second = await h.request({ command: 'offer', 'call-id': 'c-replace', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.rtp.port, { sessionName: 'second' }), replace });
  t.is(summarizeSdp(String(second.sdp)).sessionName, 'first', 'B keeps seeing the session name it saw first');
  const plain = await h.request({ command: 'offer', 'call-id': 'c-replace', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.rtp.port, { sessionName: 'third' }) });
  t.is(summarizeSdp(String(plain.sdp)).sessionName, 'third', 'without replace, s= passes through');
});

/** Sends one datagram twice with the same cookie (a Kamailio retransmission); returns both replies. */
async function sendTwice(port: number, message: Buffer): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    socket.send(message, port, '127.0.0.1');
    socket.send(message, port, '127.0.0.1');
    const deadline = Date.now() + 3000;
    while (replies.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return replies;
  } finally {
    socket.close();
  }
}

test('a retransmitted offer (same cookie) runs once and gets the same reply', async (t) => {
  const h = await startOwnRtphub(t, 8);
  const a = await Party.open(t);
  const body = encode({ command: 'offer', 'call-id': 'c-retrans', 'from-tag': 'caller', sdp: sdp(a.port) });
  const replies = await sendTwice(h.ngPort, Buffer.concat([Buffer.from('retrans1 '), body]));
  t.is(replies.length, 2);
  t.deepEqual(replies[0], replies[1], 'the second reply is the first one again');
  const reply = toPlain(decode(replies[0].subarray(replies[0].indexOf(0x20) + 1))) as Dict;
  t.is(reply.result, 'ok');
  t.is(h.running.relay.info().streams, 1, 'one stream, not two');
  t.is(h.running.calls.totals.managed, 1);
});
