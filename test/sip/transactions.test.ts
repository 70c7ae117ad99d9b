// RFC 3261 section 17 transaction timers, with the timer values shrunk (T1 = 40 ms): client
// INVITE retransmissions doubling (A) until B, a provisional stopping them, the hop-by-hop ACK
// of a final error (and again for its retransmissions), non-INVITE retransmissions capped at T2
// (E) until F, server retransmission of a final error (G) until the ACK, the last response
// resent for a retransmitted request, and a transport error failing a transaction at once.
import test from 'ava';
import { headerValues, SipRequest, SipResponse } from '../../src/sip/message';
import { parseMessage } from '../../src/sip/parser';
import { ClientOutcome, TimerValues, TransactionLayer } from '../../src/sip/transactions';
import type { Destination, Source } from '../../src/sip/transport';
import { delay, waitFor } from '../helpers/wait';

const timers: TimerValues = { t1: 40, t2: 160, t4: 100, c: 1000 };
const hop: Destination = { transport: 'udp', address: '127.0.0.1', port: 5999 };

interface Sent {
  at: number;
  to: string;
  text: string;
}

function layer(): { layer: TransactionLayer; sent: Sent[] } {
  const sent: Sent[] = [];
  const started = Date.now();
  const record = (to: Destination, bytes: Buffer): void => void sent.push({ at: Date.now() - started, to: `${to.address}:${to.port}`, text: bytes.toString() });
  const l = new TransactionLayer({ send: record, sendRequest: record }, () => undefined, timers);
  return { layer: l, sent };
}

function request(method: string, branch: string): SipRequest {
  const text = [
    `${method} sip:bob@127.0.0.1:5999 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=${branch}`,
    'Max-Forwards: 70',
    'From: <sip:alice@127.0.0.1>;tag=a1',
    'To: <sip:bob@127.0.0.1>',
    `Call-ID: ${branch}@test`,
    `CSeq: 1 ${method}`,
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

function response(req: SipRequest, status: number, toTag = 'b1'): SipResponse {
  const headers = req.headers.filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)).map((h) => ({ ...h }));
  const to = headers.find((h) => h.key === 'to');
  if (to && status > 100) to.value += `;tag=${toTag}`;
  return { kind: 'response', status, reason: 'X', headers, body: Buffer.alloc(0) };
}

const gaps = (times: number[]): number[] => times.slice(1).map((t, i) => t - times[i]);

test('INVITE client over UDP: retransmissions double from T1 (timer A) until timer B fails it', async (t) => {
  const { layer: l, sent } = layer();
  const req = request('INVITE', 'z9hG4bKa1');
  const outcome: { failure: ClientOutcome | null } = { failure: null };
  l.createClient(req, 'z9hG4bKa1', hop, { onResponse: () => undefined, onFailure: (reason) => (outcome.failure = reason) });
  await waitFor(() => outcome.failure !== null, 'timer B', 5000);
  t.is(outcome.failure, 'timeout');
  const times = sent.map((s) => s.at);
  t.true(times.length >= 6 && times.length <= 8, `7 sends expected in 64*T1, got ${times.length}: ${times.join(',')}`);
  const g = gaps(times);
  for (let i = 3; i < g.length; i++) t.true(g[i] >= g[i - 1] * 1.4, `intervals double: ${g.join(',')}`);
  t.true(g[g.length - 1] >= 16 * timers.t1, `the last interval is 32 T1: ${g.join(',')}`);
  t.true(times[times.length - 1] < 64 * timers.t1);
  t.is(l.clientCount, 0);
});

test('INVITE client: a provisional stops retransmissions; a final error is ACKed, its retransmission ACKed again, reported once', async (t) => {
  const { layer: l, sent } = layer();
  const req = request('INVITE', 'z9hG4bKa2');
  const got: number[] = [];
  l.createClient(req, 'z9hG4bKa2', hop, { onResponse: (r) => got.push(r.status), onFailure: () => t.fail('no failure expected') });
  await delay(60);
  t.true(l.response(response(req, 180), 'z9hG4bKa2'));
  const afterProvisional = sent.length;
  await delay(300);
  t.is(sent.length, afterProvisional, 'no retransmission after 180');
  l.response(response(req, 486), 'z9hG4bKa2');
  l.response(response(req, 486), 'z9hG4bKa2');
  t.deepEqual(got, [180, 486]);
  const acks = sent.filter((s) => s.text.startsWith('ACK '));
  t.is(acks.length, 2, 'one ACK per final response received');
  const ack = parseMessage(Buffer.from(acks[0].text));
  t.is(headerValues(ack, 'via')[0], 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa2', 'the ACK is in the INVITE transaction');
  t.regex(headerValues(ack, 'to')[0], /tag=b1/);
  t.regex(headerValues(ack, 'cseq')[0], /^1 ACK$/);
});

test('non-INVITE client over UDP: retransmissions capped at T2 (timer E) until F', async (t) => {
  const { layer: l, sent } = layer();
  const req = request('BYE', 'z9hG4bKb1');
  const outcome: { failure: ClientOutcome | null } = { failure: null };
  l.createClient(req, 'z9hG4bKb1', hop, { onResponse: () => undefined, onFailure: (reason) => (outcome.failure = reason) });
  await waitFor(() => outcome.failure !== null, 'timer F', 5000);
  const g = gaps(sent.map((s) => s.at));
  t.true(g.length >= 10, `many retransmissions: ${g.join(',')}`);
  // timers fire late on a busy machine, never early: the typical gap after the ramp is T2
  const capped = g.slice(3).sort((x, y) => x - y);
  const median = capped[Math.floor(capped.length / 2)];
  t.true(median >= timers.t2 * 0.9 && median <= timers.t2 * 1.3, `the gaps settle at T2: ${g.join(',')}`);
  t.true(capped.every((x) => x >= timers.t2 * 0.9), `no gap below T2 once capped: ${g.join(',')}`);
});

test('INVITE server over UDP: a final error is retransmitted (timer G) until the ACK; a retransmitted request gets the last response', async (t) => {
  const { layer: l, sent } = layer();
  const req = request('INVITE', 'z9hG4bKs1');
  const source: Source = { transport: 'udp', address: '127.0.0.1', port: 5070 };
  const tx = l.createServer('k1', req, source);
  tx.respond(response(req, 100));
  tx.retransmitted();
  t.is(sent.length, 2, 'the 100 again for the retransmitted INVITE');
  tx.respond(response(req, 486));
  await delay(400);
  const beforeAck = sent.filter((s) => s.text.startsWith('SIP/2.0 486')).length;
  t.true(beforeAck >= 3, `486 retransmitted: ${beforeAck}`);
  tx.acked();
  await delay(300);
  t.is(sent.filter((s) => s.text.startsWith('SIP/2.0 486')).length, beforeAck, 'nothing after the ACK');
  t.not(tx.state, 'completed', 'confirmed, then terminated after timer I');
  await waitFor(() => tx.state === 'terminated', 'timer I', 1000);
});

test('a transport error fails a client transaction at once (no waiting for timer B)', async (t) => {
  const { layer: l } = layer();
  const req = request('INVITE', 'z9hG4bKe1');
  const outcome: { failure: ClientOutcome | null } = { failure: null };
  const started = Date.now();
  l.createClient(req, 'z9hG4bKe1', hop, { onResponse: () => undefined, onFailure: (reason) => (outcome.failure = reason) });
  l.transportError('udp:127.0.0.1:5999');
  t.is(outcome.failure, 'transport');
  t.true(Date.now() - started < timers.t1);
  t.is(l.clientCount, 0);
});
