// How calls end and how offers are refused, over real sockets with rtphub started in-process and
// driven through NgClient as Kamailio drives rtpengine: delete with a delete delay (the call stays
// queryable and forwarding, then goes) and without, delete of an unknown call (a warning, or an
// error with `fatal`), the session limit (`load limit` for controllers that support it), running
// out of ports, bad SDP, and the timeouts the sweeper (once a second) applies: no media, and an
// offer never answered. Each test runs its own relay on its own slice of 47700..47999 (ng on an
// ephemeral port), so the tests of this file run side by side.
import test, { ExecutionContext } from 'ava';
import { BEncodable } from '../../src/ng/bencode';
import { summarizeSdp } from '../../src/sdp/parse';
import { rtp } from '../helpers/packets';
import { Dict, Rtphub, startRtphub } from '../helpers/rtphub';
import { Party } from '../helpers/udp';

const MEDIA_BASE = 47700;
const MEDIA_SLICE = 20;
const RELAY = '127.0.0.1';

/** rtphub with its own media port slice (`size` ports); stopped when the test ends. */
function startOwnRtphub(t: ExecutionContext, slot: number, flags: string[] = [], size = MEDIA_SLICE): Promise<Rtphub> {
  const portMin = MEDIA_BASE + slot * MEDIA_SLICE;
  return startRtphub(t, portMin, portMin + size - 1, flags);
}

function sdp(port: number, session = '1'): string {
  return `v=0\r\no=- ${session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
}

function audioPort(reply: Dict): number {
  if (reply.result !== 'ok') throw new Error(`ng command failed: ${JSON.stringify(reply)}`);
  return summarizeSdp(String(reply.sdp)).media[0].port;
}

const relayAt = (port: number) => ({ address: RELAY, port });
const UNKNOWN = { result: 'error', 'error-reason': 'Unknown call-id' };

async function establish(h: Rtphub, callId: string, a: Party, b: Party): Promise<{ toA: number; toB: number }> {
  const o = await h.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', sdp: sdp(a.port) });
  const ans = await h.request({ command: 'answer', 'call-id': callId, 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.port, '2') });
  return { toA: audioPort(ans), toB: audioPort(o) };
}

async function forwards(from: Party, to: Party, relayPort: number, seq: number): Promise<boolean> {
  const packet = rtp({ seq });
  await from.send(packet, relayAt(relayPort));
  try {
    return (await to.receive(500)).data.equals(packet);
  } catch {
    return false;
  }
}

test('delete with a delete delay: queryable and forwarding during the delay, then gone', async (t) => {
  const h = await startOwnRtphub(t, 0);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const { toA, toB } = await establish(h, 'l-delay', a, b);
  const gone = h.ended('l-delay', 5000);
  const reply = await h.request({ command: 'delete', 'call-id': 'l-delay', 'from-tag': 'caller', 'delete-delay': 1 });
  t.is(reply.result, 'ok');
  t.truthy(reply.tags, 'the reply carries the stats');
  t.is((await h.request({ command: 'query', 'call-id': 'l-delay' })).result, 'ok', 'still queryable');
  t.true(await forwards(a, b, toA, 1), 'media still flows A to B');
  t.true(await forwards(b, a, toB, 2), 'media still flows B to A');
  t.is(await gone, 'deleted');
  t.deepEqual(await h.request({ command: 'query', 'call-id': 'l-delay' }), UNKNOWN);
  t.is(h.portsInUse(), 0);
  t.false(await forwards(a, b, toA, 3), 'no more forwarding');
});

test('delete with the configured delete delay (--delete-delay), and a re-offer cancels it', async (t) => {
  const h = await startOwnRtphub(t, 1, ['--delete-delay=1']);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  await establish(h, 'l-default', a, b);
  await establish(h, 'l-resumed', a, b);
  const gone = h.ended('l-default', 5000);
  await h.request({ command: 'delete', 'call-id': 'l-default', 'from-tag': 'caller' });
  await h.request({ command: 'delete', 'call-id': 'l-resumed', 'from-tag': 'caller' });
  await h.request({ command: 'offer', 'call-id': 'l-resumed', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(a.port) });
  t.is(await gone, 'deleted');
  await new Promise((r) => setTimeout(r, 1200));
  t.is((await h.request({ command: 'query', 'call-id': 'l-resumed' })).result, 'ok', 'signalling after the delete keeps the call');
});

test('delete with delay 0 ends the call at once and frees its ports', async (t) => {
  const h = await startOwnRtphub(t, 2);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const { toA } = await establish(h, 'l-now', a, b);
  t.is(h.portsInUse(), 4);
  const reply = await h.request({ command: 'delete', 'call-id': 'l-now', 'from-tag': 'caller', 'to-tag': 'callee', 'delete-delay': 0 });
  t.is(reply.result, 'ok');
  t.deepEqual(await h.request({ command: 'query', 'call-id': 'l-now' }), UNKNOWN);
  t.deepEqual(await h.request({ command: 'list' }), { calls: [], result: 'ok' });
  t.is(h.portsInUse(), 0);
  t.false(await forwards(a, b, toA, 1));
});

test('delete of an unknown call: a warning, or an error with the fatal flag', async (t) => {
  const h = await startOwnRtphub(t, 3);
  const reason = "Call-ID not found or tags didn't match";
  t.deepEqual(await h.request({ command: 'delete', 'call-id': 'l-none', 'from-tag': 'caller' }), { result: 'ok', warning: reason });
  t.deepEqual(await h.request({ command: 'delete', 'call-id': 'l-none', 'from-tag': 'caller', flags: ['fatal'] }), { result: 'error', 'error-reason': reason });
  const a = await Party.open(t);
  await h.request({ command: 'offer', 'call-id': 'l-tags', 'from-tag': 'caller', sdp: sdp(a.port) });
  t.deepEqual(await h.request({ command: 'delete', 'call-id': 'l-tags', 'from-tag': 'stranger', 'delete-delay': 0 }), { result: 'ok', warning: reason }, 'unknown tag');
  t.is((await h.request({ command: 'query', 'call-id': 'l-tags' })).result, 'ok', 'the call is untouched');
});

test('--max-sessions: `load limit` for controllers that support it, an error for the others', async (t) => {
  const h = await startOwnRtphub(t, 4, ['--max-sessions=1']);
  const a = await Party.open(t);
  const offer = (callId: string, extra: Record<string, BEncodable> = {}) =>
    h.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', sdp: sdp(a.port), ...extra });
  t.is((await offer('l-first')).result, 'ok');
  t.deepEqual(await offer('l-second', { supports: ['load limit'] }), { result: 'load limit', message: 'Parallel session limit reached' });
  t.deepEqual(await offer('l-second'), { result: 'error', 'error-reason': 'Parallel session limit reached' });
  t.is((await offer('l-first', { supports: ['load limit'] })).result, 'ok', 'a re-offer of a call in progress is no new session');
  t.deepEqual(await h.request({ command: 'list' }), { calls: ['l-first'], result: 'ok' });
  t.is(h.running.calls.totals.rejected, 2);
  await h.request({ command: 'delete', 'call-id': 'l-first', 'from-tag': 'caller', 'delete-delay': 0 });
  t.is((await offer('l-second', { supports: ['load limit'] })).result, 'ok', 'room again after a delete');
});

test('a tiny port range: `Ran out of ports`, the refused call is not kept, a delete makes room', async (t) => {
  const h = await startOwnRtphub(t, 5, [], 8);
  const a = await Party.open(t);
  const replies: Dict[] = [];
  // 8 ports are 4 RTP/RTCP pairs: two calls at most (fewer if another process holds one of them)
  for (let i = 0; i < 4; i++) {
    const reply = await h.request({ command: 'offer', 'call-id': `l-port-${i}`, 'from-tag': 'caller', sdp: sdp(a.port) });
    replies.push(reply);
    if (reply.result !== 'ok') break;
  }
  const refused = replies[replies.length - 1];
  t.deepEqual(refused, { result: 'error', 'error-reason': 'Ran out of ports' });
  t.true(replies.length >= 2 && replies.length <= 3, `${replies.length - 1} calls fitted`);
  const refusedId = `l-port-${replies.length - 1}`;
  t.deepEqual(await h.request({ command: 'query', 'call-id': refusedId }), UNKNOWN, 'the refused call is gone');
  await h.request({ command: 'delete', 'call-id': 'l-port-0', 'from-tag': 'caller', 'delete-delay': 0 });
  t.is((await h.request({ command: 'offer', 'call-id': refusedId, 'from-tag': 'caller', sdp: sdp(a.port) })).result, 'ok');
});

test('bad SDP: `Failed to parse SDP` or `Incomplete SDP specification`, and no call', async (t) => {
  const h = await startOwnRtphub(t, 6);
  const offer = (body: string) => h.request({ command: 'offer', 'call-id': 'l-bad', 'from-tag': 'caller', sdp: body });
  t.deepEqual(await offer('this is not SDP'), { result: 'error', 'error-reason': 'Failed to parse SDP' });
  t.deepEqual(await offer('v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n'), { result: 'error', 'error-reason': 'Failed to parse SDP' }, 'no m= line');
  const noConnection = sdp(4000).replace('c=IN IP4 127.0.0.1\r\n', '');
  t.deepEqual(await offer(noConnection), { result: 'error', 'error-reason': 'Incomplete SDP specification' });
  t.deepEqual(await h.request({ command: 'list' }), { calls: [], result: 'ok' });
  t.is(h.portsInUse(), 0);
  const a = await Party.open(t);
  await h.request({ command: 'offer', 'call-id': 'l-bad-answer', 'from-tag': 'caller', sdp: sdp(a.port) });
  const answer = await h.request({ command: 'answer', 'call-id': 'l-bad-answer', 'from-tag': 'caller', 'to-tag': 'callee', sdp: 'nonsense' });
  t.deepEqual(answer, { result: 'error', 'error-reason': 'Failed to parse SDP' });
  t.is((await h.request({ command: 'query', 'call-id': 'l-bad-answer' })).result, 'ok', 'a bad answer leaves the call as it was');
});

test('--timeout: an answered call without media ends with reason timeout; media keeps one alive', async (t) => {
  const h = await startOwnRtphub(t, 7, ['--timeout=2']);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const started = Date.now();
  await establish(h, 'l-silent', a, b);
  const { toA } = await establish(h, 'l-talking', a, b);
  const silent = h.ended('l-silent', 8000);
  let seq = 0;
  // the talking call sends every 200 ms until the silent one has timed out (bounded by its deadline)
  let done = false;
  void silent.finally(() => (done = true)).catch(() => undefined);
  while (!done && Date.now() - started < 8000) {
    await a.send(rtp({ seq: ++seq }), relayAt(toA));
    await new Promise((r) => setTimeout(r, 200));
  }
  t.is(await silent, 'timeout');
  t.true(Date.now() - started >= 1900, 'not before the timeout');
  t.deepEqual(await h.request({ command: 'query', 'call-id': 'l-silent' }), UNKNOWN);
  t.is((await h.request({ command: 'query', 'call-id': 'l-talking' })).result, 'ok', 'the call with media lives on');
  t.is(h.running.calls.totals.ended.timeout, 1);
});

test('--offer-timeout: an offer never answered ends with reason offer-timeout', async (t) => {
  const h = await startOwnRtphub(t, 8, ['--timeout=1', '--offer-timeout=2']);
  const a = await Party.open(t);
  const started = Date.now();
  await h.request({ command: 'offer', 'call-id': 'l-unanswered', 'from-tag': 'caller', sdp: sdp(a.port) });
  t.is(await h.ended('l-unanswered', 5000), 'offer-timeout');
  t.true(Date.now() - started >= 1900, 'it outlives --timeout: only the offer timeout applies');
  t.deepEqual(await h.request({ command: 'query', 'call-id': 'l-unanswered' }), UNKNOWN);
  t.is(h.portsInUse(), 0);
});
