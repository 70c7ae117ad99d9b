// The SIP front with real SIPp processes: a SIPp caller (a gateway) sends calls to rtphub's
// --listen-sip; SIPp stand-in proxies at priority levels answer them and echo RTP. Covers the
// proxy table end to end (round-robin on level 1, a level-1 proxy down by ICMP and by silence,
// a whole level down, a proxy returning after its probes), what reaches the proxy (SDP pointing
// at the relay, Record-Route with alternatePath), RTP both ways through the relay, no call or
// port left after BYE, and malformed input answered without harm. Skipped (with a log line)
// only when sipp is not installed.
import test, { ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { toPlain } from '../../src/ng/bencode';
import { NgClient } from '../../src/ng/client';
import { headerValues, SipRequest } from '../../src/sip/message';
import { parseMessage } from '../../src/sip/parser';
import { BRANCH_PREFIX, loopHash } from '../../src/sip/routing';
import { PeerGroup } from '../helpers/sip-peers';
import { delay, waitFor } from '../helpers/wait';
import { diagnostics, Front, freeSipPort, inRange, logged, placeCalls, sippMissing, startFront, startUas, watchMedia, workDir } from './harness';

const media = { min: 52000, max: 52399 };
const backup = '127.0.0.1:51999';

interface Context {
  dir: string;
  peers: PeerGroup;
  front?: Front;
}

function ready(t: ExecutionContext): boolean {
  if (!sippMissing) return true;
  t.log('skipped: sipp is not installed (Debian package sip-tester)');
  t.pass();
  return false;
}

async function setup(t: ExecutionContext): Promise<Context> {
  const ctx: Context = { dir: workDir('rtphub-sip-front-'), peers: new PeerGroup() };
  t.teardown(async () => {
    await ctx.peers.stopAll();
    await ctx.front?.running.stop();
    fs.rmSync(ctx.dir, { recursive: true, force: true });
  });
  return ctx;
}

/** A UDP port nobody listens on: sends there draw ICMP port-unreachable at once. */
async function deadPort(): Promise<number> {
  return freeSipPort();
}

/** A socket that takes datagrams and never answers: a proxy that hangs. */
async function blackhole(t: ExecutionContext): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  return socket.address().port;
}

test.serial('all proxies up: calls spread round-robin over level 1, reach it with relay SDP and alternatePath, RTP both ways, nothing left after BYE', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'a');
  const b = await startUas(ctx.peers, ctx.dir, 'b');
  const c = await startUas(ctx.peers, ctx.dir, 'c');
  ctx.front = await startFront(media, [
    `--proxy=sip:127.0.0.1:${a.port};priority=1`,
    `--proxy=sip:127.0.0.1:${b.port};priority=1`,
    `--proxy=sip:127.0.0.1:${c.port};priority=2`,
    `--alternate-path=${backup}`,
  ]);
  const front = ctx.front;
  const calls = 10;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'rr', calls, rate: 10, durationMs: 1500, timeoutS: 30 });
  const { bothWays, peak } = await watchMedia(front, uac.process);
  const exit = await uac.process.exitWithin(1000);
  t.is(exit.code, 0, `every call completed\n${diagnostics(ctx.dir, [uac.process, a.process, b.process], front)}`);

  const offersA = logged(a.log, 'offer');
  const offersB = logged(b.log, 'offer');
  t.is(offersA.length, calls / 2, 'half the calls went to the first level-1 proxy');
  t.is(offersB.length, calls / 2, 'half to the second');
  t.is(logged(c.log, 'offer').length, 0, 'none to level 2');
  const offers = [...offersA, ...offersB];
  t.deepEqual(offers.filter((o) => !inRange(o.text, media)), [], 'the INVITE at the proxy carries SDP pointing at the relay');
  const answers = logged(uac.log, 'answer');
  t.is(answers.length, calls);
  t.deepEqual(answers.filter((o) => !inRange(o.text, media)), [], 'the 200 at the caller carries SDP pointing at the relay');
  const rr = logged(a.log, 'record-route');
  t.true(rr.length > 0);
  for (const r of rr) t.regex(r.text.trim(), new RegExp(`^<sip:127\\.0\\.0\\.1:${front.port};lr;alternatePath=${backup.replace(/\./g, '\\.')}>$`));
  t.log(`peak of ${peak} calls up at once`);
  t.true(peak >= 2, 'calls overlapped');
  t.deepEqual([...bothWays].filter(([, ok]) => !ok).map(([id]) => id), [], 'RTP crossed the relay both ways in every call');
  t.is(bothWays.size, calls);

  await waitFor(() => front.running.calls.size === 0, 'no live call after the BYEs', 3000);
  t.is(front.running.relay.info().portsInUse, 0, 'every media port is free');
  const [pa, pb] = front.sip.table?.proxies ?? [];
  t.is(pa.counters.successes, calls / 2);
  t.is(pb.counters.successes, calls / 2);
  t.is(front.sip.counters.answered, calls);
  t.is(front.sip.counters.internalErrors, 0);
  // the restoration labels were on the calls; they are gone with them, so check a live one below
});

test.serial('one level-1 proxy down (ICMP) and one silent: every call completes through the other, setup bounded by the timeout', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const up = await startUas(ctx.peers, ctx.dir, 'up');
  const dead = await deadPort();
  const silent = await blackhole(t);
  const level2 = await startUas(ctx.peers, ctx.dir, 'level2');
  const timeoutMs = 400;
  ctx.front = await startFront(media, [
    `--proxy=sip:127.0.0.1:${dead};priority=1`,
    `--proxy=sip:127.0.0.1:${silent};priority=1`,
    `--proxy=sip:127.0.0.1:${up.port};priority=1`,
    `--proxy=sip:127.0.0.1:${level2.port};priority=2`,
    `--proxy-timeout=${timeoutMs}`,
    '--proxy-probe-interval=60000',
  ]);
  const front = ctx.front;
  const calls = 6;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'down', calls, rate: 5, durationMs: 500, timeoutS: 30 });
  const exit = await uac.process.exitWithin(25000);
  t.is(exit.code, 0, `every call completed\n${diagnostics(ctx.dir, [uac.process, up.process], front)}`);
  t.is(logged(up.log, 'offer').length, calls, 'every call went to the proxy that is up');
  t.is(logged(level2.log, 'offer').length, 0, 'level 2 was not needed');
  const [pDead, pSilent, pUp] = front.sip.table?.proxies ?? [];
  t.like(pDead.counters, { attempts: 1, transportErrors: 1, timeouts: 0 });
  // calls that arrive while the silent proxy's first timeout runs may try it too
  t.true(pSilent.counters.attempts >= 1 && pSilent.counters.attempts <= 2, `silent proxy tried ${pSilent.counters.attempts} times`);
  t.like(pSilent.counters, { timeouts: pSilent.counters.attempts, transportErrors: 0 });
  t.is(pUp.counters.successes, calls);
  t.is(pDead.state, 'down');
  t.is(pSilent.state, 'down');
  const rtt = uac.rtt();
  t.log(`setup times (ms): ${rtt.join(', ')}`);
  t.is(rtt.length, calls);
  t.true(Math.max(...rtt) < timeoutMs + 300, `no call waited more than the first timeout (${Math.max(...rtt)} ms)`);
  await waitFor(() => front.running.calls.size === 0, 'no live call after the BYEs', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
});

test.serial('the only proxy answers after the first timeout: it is taken out of service, yet the call waits for it and completes', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const slow = await startUas(ctx.peers, ctx.dir, 'slow', undefined, 'uas-slow.xml');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${slow.port}`, '--proxy-timeout=300', '--proxy-probe-interval=60000']);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'slow', calls: 1, rate: 1, durationMs: 300, timeoutS: 15 });
  t.is((await uac.process.exitWithin(10000)).code, 0, diagnostics(ctx.dir, [uac.process, slow.process], front));
  const [p] = front.sip.table?.proxies ?? [];
  t.like(p.counters, { attempts: 1, timeouts: 1, successes: 1 });
  t.is(p.state, 'down', 'out of service until its probes are answered');
  const rtt = uac.rtt();
  t.true(rtt.length === 1 && rtt[0] >= 800, `the call waited for the slow proxy (${rtt.join(',')} ms)`);
});

test.serial('a whole level down: level 2 takes the calls', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const l2a = await startUas(ctx.peers, ctx.dir, 'l2a');
  const l2b = await startUas(ctx.peers, ctx.dir, 'l2b');
  ctx.front = await startFront(media, [
    `--proxy=sip:127.0.0.1:${await deadPort()};priority=1`,
    `--proxy=sip:127.0.0.1:${await deadPort()};priority=1`,
    `--proxy=sip:127.0.0.1:${l2a.port};priority=2`,
    `--proxy=sip:127.0.0.1:${l2b.port};priority=2`,
    '--proxy-probe-interval=60000',
  ]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'level', calls: 6, rate: 6, durationMs: 500, timeoutS: 20 });
  const exit = await uac.process.exitWithin(15000);
  t.is(exit.code, 0, `every call completed\n${diagnostics(ctx.dir, [uac.process, l2a.process, l2b.process], front)}`);
  t.is(logged(l2a.log, 'offer').length, 3);
  t.is(logged(l2b.log, 'offer').length, 3);
  t.is(front.sip.table?.activeLevel(), 2);
  await waitFor(() => front.running.calls.size === 0, 'no live call after the BYEs', 3000);
});

test.serial('a proxy that returns: after N answered probes the table goes back to level 1', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const l1Port = await freeSipPort();
  const l2 = await startUas(ctx.peers, ctx.dir, 'l2');
  ctx.front = await startFront(media, [
    `--proxy=sip:127.0.0.1:${l1Port};priority=1`,
    `--proxy=sip:127.0.0.1:${l2.port};priority=2`,
    '--proxy-probe-interval=150',
    '--proxy-probe-answers=3',
  ]);
  const front = ctx.front;
  const [p1] = front.sip.table?.proxies ?? [];
  await waitFor(() => p1.state === 'down', 'the probes to find level 1 down', 3000);
  const before = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'before', calls: 3, rate: 10, durationMs: 300, timeoutS: 15 });
  t.is((await before.process.exitWithin(10000)).code, 0, diagnostics(ctx.dir, [before.process], front));
  t.is(logged(l2.log, 'offer').length, 3, 'level 2 took the calls while level 1 was down');

  t.is(p1.counters.probes, p1.counters.probeFailures, 'every probe failed while level 1 was away');
  const l1 = await startUas(ctx.peers, ctx.dir, 'l1', l1Port);
  await waitFor(() => p1.state === 'up', 'level 1 back in service', 5000);
  t.is(p1.counters.probes - p1.counters.probeFailures, 3, 'back after exactly three answered probes');
  t.is(front.sip.table?.activeLevel(), 1);
  const after = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'after', calls: 3, rate: 10, durationMs: 300, timeoutS: 15 });
  t.is((await after.process.exitWithin(10000)).code, 0, diagnostics(ctx.dir, [after.process, l1.process], front));
  t.is(logged(l1.log, 'offer').length, 3, 'the calls are back on level 1');
  t.is(logged(l2.log, 'offer').length, 3, 'and no more on level 2');
});

test.serial('a live call keeps its SIP dialog as labels for its restoration record; ctl proxies shows the table', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'a');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${a.port}`]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'labels', calls: 1, rate: 1, durationMs: 2000, timeoutS: 15 });
  await waitFor(() => [...front.running.calls.calls.values()].some((c) => c.answered), 'the call to be answered', 5000);
  const call = [...front.running.calls.calls.values()][0];
  const [caller, callee] = [...call.parties.values()];
  t.like(caller.labels, { 'sip-call-id': call.callId });
  t.regex(caller.labels['sip-from'] ?? '', /tag=/);
  t.regex(caller.labels['sip-contact'] ?? '', /sip:uac@/);
  t.regex(caller.labels['sip-cseq'] ?? '', /^1 INVITE$/);
  t.regex(caller.labels['sip-source'] ?? '', /^udp:127\.0\.0\.1:\d+$/);
  t.regex(callee.labels['sip-to'] ?? '', /tag=/);
  t.regex(callee.labels['sip-contact'] ?? '', /sip:uas@/);
  t.regex(callee.labels['sip-route-set'] ?? '', new RegExp(`sip:127\\.0\\.0\\.1:${front.port};lr`));
  t.is(callee.labels['sip-proxy'], `sip:127.0.0.1:${a.port}`);

  // what `rtphub ctl proxies` sends
  const client = new NgClient({ host: '127.0.0.1', port: front.running.ng.addresses().udp?.port ?? 0, timeoutMs: 1000 });
  const status = await client.request({ command: 'cli', 'cli args': 'proxies' });
  client.close();
  const plain = toPlain(status) as { result: string; 'active level': number; proxies: Array<{ uri: string; state: string; attempts: number }> };
  t.is(plain.result, 'ok');
  t.is(plain['active level'], 1);
  t.like(plain.proxies[0], { uri: `sip:127.0.0.1:${a.port}`, state: 'up', attempts: 1 });
  t.is((await uac.process.exitWithin(10000)).code, 0);
});

test.serial('SIP over TCP from the caller, UDP to the proxy: two Record-Routes, the dialog follows them, media anchored', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'a');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${a.port}`]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'tcp', calls: 3, rate: 3, durationMs: 1000, timeoutS: 20, transport: 't1' });
  const { bothWays } = await watchMedia(front, uac.process);
  const exit = await uac.process.exitWithin(1000);
  t.is(exit.code, 0, `every call completed over TCP\n${diagnostics(ctx.dir, [uac.process, a.process], front)}`);
  const offers = logged(a.log, 'offer');
  t.is(offers.length, 3);
  t.deepEqual(offers.filter((o) => !inRange(o.text, media)), [], 'relay SDP');
  for (const r of logged(a.log, 'record-route')) t.regex(r.text.trim(), new RegExp(`^<sip:127\\.0\\.0\\.1:${front.port};lr>`), 'the top one faces the proxy (UDP)');
  t.true((front.sip.counters.requests.BYE ?? 0) >= 3, 'the BYEs came through the front');
  t.deepEqual([...bothWays].filter(([, ok]) => !ok).map(([id]) => id), [], 'RTP both ways');
  await waitFor(() => front.running.calls.size === 0, 'no live call after the BYEs', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
});

test.serial('as a backup, a response for a failed primary (its Via names us in alternatePath) is forwarded with the routing rewritten to us', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  ctx.front = await startFront(media, ['--proxy-probe-interval=0']);
  const front = ctx.front;
  const caller = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => caller.bind(0, '127.0.0.1', resolve));
  t.teardown(() => caller.close());
  const got: string[] = [];
  caller.on('message', (m) => got.push(m.toString('latin1')));
  const primary = '127.0.0.1:51997';
  // the callee answers an INVITE that the (now dead) primary forwarded; it sends to the backup
  const ok = [
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${primary};branch=z9hG4bKrhdeadbeef.1;alternatePath="127.0.0.1:${front.port}"`,
    `Via: SIP/2.0/UDP 127.0.0.1:${caller.address().port};branch=z9hG4bKcaller1`,
    `Record-Route: <sip:${primary};lr;alternatePath=127.0.0.1:${front.port}>`,
    'From: <sip:a@127.0.0.1>;tag=fa',
    'To: <sip:b@127.0.0.1>;tag=tb',
    'Call-ID: takeover-1@test',
    'CSeq: 1 INVITE',
    'Contact: <sip:b@127.0.0.1:5999>',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  t.teardown(() => sock.close());
  sock.send(ok, front.port, '127.0.0.1');
  await waitFor(() => got.length > 0, 'the 200 to reach the caller through the backup', 2000);
  const forwarded = parseMessage(Buffer.from(got[0]));
  t.deepEqual(headerValues(forwarded, 'via'), [`SIP/2.0/UDP 127.0.0.1:${caller.address().port};branch=z9hG4bKcaller1`], 'the primary\'s Via is gone');
  t.deepEqual(headerValues(forwarded, 'record-route'), [`<sip:127.0.0.1:${front.port};lr>`], 'the route now names the backup');
  t.is(front.sip.counters.takeovers, 1);
  // a response whose top Via names someone else, without us as its backup, is dropped
  sock.send(ok.replace(`alternatePath="127.0.0.1:${front.port}"`, 'alternatePath="127.0.0.1:9"'), front.port, '127.0.0.1');
  await delay(200);
  t.is(got.length, 1);
  t.is(front.sip.counters.dropped, 1);
});

test.serial('re-INVITE (hold) follows the dialog: re-offered to the relay both ways, the call goes on hold, BYE ends it', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'hold-uas', undefined, 'uas-hold.xml');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${a.port}`]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'hold', calls: 1, rate: 1, durationMs: 0, timeoutS: 15, scenario: 'uac-hold.xml' });
  let held = false;
  while (uac.process.running) {
    for (const call of front.running.calls.calls.values()) held ||= call.answered && call.onHold();
    await delay(20);
  }
  t.is((await uac.process.exitWithin(1000)).code, 0, diagnostics(ctx.dir, [uac.process, a.process], front));
  const reoffer = logged(a.log, 'reoffer');
  const reanswer = logged(uac.log, 'reanswer');
  t.is(reoffer.length, 1);
  t.is(reanswer.length, 1);
  t.true(inRange(reoffer[0].text, media) && reoffer[0].text.endsWith('a=sendonly'), `the re-offer at the callee: ${reoffer[0]?.text}`);
  t.true(inRange(reanswer[0].text, media) && reanswer[0].text.endsWith('a=recvonly'), `the re-answer at the caller: ${reanswer[0]?.text}`);
  t.true(held, 'the call model saw the call on hold');
  await waitFor(() => front.running.calls.size === 0, 'no live call after the BYE', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
});

test.serial('CANCEL while ringing: 200 to the CANCEL, CANCEL passed on, 487 back, ACKs hop by hop, the call ended', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'cancel-uas', undefined, 'uas-cancel.xml');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${a.port}`]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'cancel', calls: 3, rate: 3, durationMs: 0, timeoutS: 15, scenario: 'uac-cancel.xml' });
  t.is((await uac.process.exitWithin(12000)).code, 0, diagnostics(ctx.dir, [uac.process, a.process], front));
  t.is(logged(a.log, 'cancel').length, 3, 'the callee got each CANCEL');
  t.is(front.sip.counters.cancelled, 3);
  await waitFor(() => front.running.calls.size === 0, 'no live call after the CANCELs', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
  await waitFor(() => !a.process.running || logged(a.log, 'offer').length === 3, 'callee done', 2000);
  t.is(front.sip.counters.internalErrors, 0);
});

test.serial('a final error (486) goes back to the caller, is ACKed hop by hop on both sides, and ends the call', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  const a = await startUas(ctx.peers, ctx.dir, 'busy-uas', undefined, 'uas-busy.xml');
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${a.port}`]);
  const front = ctx.front;
  const uac = await placeCalls(ctx.peers, ctx.dir, front.port, { name: 'busy', calls: 3, rate: 3, durationMs: 0, timeoutS: 15, scenario: 'uac-busy.xml' });
  t.is((await uac.process.exitWithin(12000)).code, 0, diagnostics(ctx.dir, [uac.process, a.process], front));
  t.is(front.sip.counters.rejected, 3);
  t.is(front.sip.counters.retransmissions, 0, 'no 486 was retransmitted for want of an ACK');
  await waitFor(() => front.running.calls.size === 0, 'no live call after the 486s', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
  t.true(front.sip.table?.proxies[0].state === 'up', 'an error answer is an answer: the proxy stays in service');
});

test.serial('malformed and hostile input: 4xx where a response can be built, dropped otherwise, no crash, no call or port left', async (t) => {
  if (!ready(t)) return;
  const ctx = await setup(t);
  // no proxy answers: every INVITE that parses ends in an error, so no call may be left
  ctx.front = await startFront(media, [`--proxy=sip:127.0.0.1:${await deadPort()}`, '--proxy-probe-interval=0']);
  const front = ctx.front;
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  const me = socket.address().port;
  const replies: string[] = [];
  socket.on('message', (m) => replies.push(m.toString('latin1')));
  const request = (method: string, extra: string[], body = '', id = `${method}-${replies.length}-${Math.random()}`): string =>
    [
      `${method} sip:x@127.0.0.1:${front.port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK${id.replace(/[^a-z0-9]/gi, '')}`,
      'From: <sip:f@127.0.0.1>;tag=ft',
      'To: <sip:x@127.0.0.1>',
      `Call-ID: ${id}`,
      `CSeq: 1 ${method}`,
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
  /** The first reply other than 100 Trying, waiting up to `waitMs` (the machine may be busy). */
  const send = async (text: string | Buffer, waitMs = 3000): Promise<string | undefined> => {
    const n = replies.length;
    socket.send(typeof text === 'string' ? Buffer.from(text) : text, front.port, '127.0.0.1');
    const callId = /Call-ID: (\S+)/.exec(text.toString('latin1'))?.[1];
    const ours = (r: string): boolean => callId === undefined || r.includes(`Call-ID: ${callId}\r\n`);
    const final = (): string | undefined => replies.slice(n).find((r) => !r.startsWith('SIP/2.0 100') && ours(r));
    await waitFor(() => final() !== undefined, 'a reply', waitMs).catch(() => undefined);
    return final();
  };
  t.regex((await send(request('INVITE', ['Max-Forwards: 0']))) ?? '', /^SIP\/2\.0 483 /);
  t.regex((await send(request('INVITE', ['Max-Forwards: 70', 'Content-Type: application/sdp'], 'this is not SDP'))) ?? '', /^SIP\/2\.0 488 /);
  t.regex((await send(request('INVITE', ['Max-Forwards: 70', 'Content-Type: multipart/mixed;boundary=x'], '--x\r\n\r\n--x--'))) ?? '', /^SIP\/2\.0 415 /);
  t.regex((await send(request('INVITE', ['Max-Forwards: 70', 'Content-Length: 9000']))) ?? '', /^SIP\/2\.0 400 /);
  t.regex((await send(request('OPTIONS', ['Max-Forwards: 70']).replace(' SIP/2.0\r\n', ' SIP/3.0\r\n'))) ?? '', /^SIP\/2\.0 505 /);
  t.regex((await send(request('OPTIONS', ['Max-Forwards: 70']).replace(`sip:x@127.0.0.1:${front.port}`, `sip:127.0.0.1:${front.port}`))) ?? '', /^SIP\/2\.0 200 /);
  // a request that already went through us in the same shape: a loop (482); changed, a spiral
  const again = request('OPTIONS', ['Max-Forwards: 70']);
  const hash = loopHash(parseMessage(Buffer.from(again)) as SipRequest);
  const ownVia = `Via: SIP/2.0/UDP 127.0.0.1:${front.port};branch=${BRANCH_PREFIX}${hash}.1\r\n`;
  t.regex((await send(again.replace(/(Via: [^\r]*\r\n)/, `$1${ownVia}`))) ?? '', /^SIP\/2\.0 482 /);
  t.is(await send(Buffer.from('garbage\r\n\r\n'), 300), undefined, 'garbage is dropped');

  // fuzz: mutated INVITEs with SDP, thrown at the front
  const base = Buffer.from(request('INVITE', ['Max-Forwards: 70', 'Content-Type: application/sdp'], 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n', 'fuzzbase'));
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 1500; i++) {
    const bytes = Buffer.from(base);
    for (let k = 0; k < 1 + random(4); k++) bytes[random(bytes.length)] = random(256);
    socket.send(bytes, front.port, '127.0.0.1');
    if (i % 100 === 0) await delay(20);
  }
  await delay(1500);
  const status = await send(request('OPTIONS', ['Max-Forwards: 70']).replace(`sip:x@127.0.0.1:${front.port}`, `sip:127.0.0.1:${front.port}`));
  t.regex(status ?? '', /^SIP\/2\.0 200 /, 'the front still answers');
  t.is(front.sip.counters.internalErrors, 0, JSON.stringify(front.sip.counters));
  t.true(Object.keys(front.sip.counters.parseErrors).length > 0);
  t.log(`fuzz: parse errors by status ${JSON.stringify(front.sip.counters.parseErrors)}, ${front.sip.counters.invites} INVITEs parsed`);
  await waitFor(() => front.running.calls.size === 0, 'every call to end (no proxy answers)', 5000);
  // ports return to the pool when the worker reports the sockets closed, just after the calls end
  await waitFor(() => front.running.relay.info().portsInUse === 0, 'no port leaked', 3000);
  t.pass();
});
