// rtphub as the media relay of Debian's Kamailio: the `rtpengine` module points at rtphub's ng
// socket and a stateful proxy script calls rtpengine_manage() on INVITE, replies, ACK and BYE
// (kamailio/kamailio.cfg). SIPp places calls through Kamailio to a SIPp callee that echoes RTP,
// so media crosses the relay in both directions. The relay runs in this process, with a delete
// delay of 0 so a call ends on Kamailio's delete. Skipped (with a log line) only when kamailio or
// sipp is not installed; CI installs the Debian packages kamailio and sip-tester.
import test, { ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Running, start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import { BDict, BEncodable, toPlain } from '../../src/ng/bencode';
import { NgClient } from '../../src/ng/client';
import {
  LoggedSdp,
  freeUdpPort,
  PeerGroup,
  PeerProcess,
  installed,
  kamailioBinary,
  loggedSdp,
  sippBinary,
  waitForSipProxy,
  waitForUdpPort,
} from '../helpers/sip-peers';
import { delay, waitFor } from '../helpers/wait';

const scenarios = path.join(__dirname, 'kamailio');
const relayAddress = '127.0.0.1';
// SIP in 49000..49999, media in 50000..50999 (the relay's pool below, SIPp's above). Within
// those ranges each peer takes a port that is free when it starts (see freeUdpPort).
const sipPorts = { min: 49000, max: 49999 };
const relayPorts = { min: 50000, max: 50399 };
const sippMediaPorts = { min: 50400, max: 50996 };
const tools = [kamailioBinary, sippBinary];
const missing = tools.filter((tool) => !installed(tool));

interface Harness {
  dir: string;
  running: Running;
  ng: NgClient;
  peers: PeerGroup;
  kamailio: PeerProcess;
  kamailioPort: number;
  uas: PeerProcess;
  uasPort: number;
  uasLog: string;
  relayLog: string[];
}

const harness: Partial<Harness> = {};

test.before(async () => {
  if (missing.length > 0) return;
  const h = harness;
  h.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtphub-kamailio-'));
  // 50 frames of A-law silence: the UAC plays it in a loop, one 160-byte frame per 20 ms.
  fs.writeFileSync(path.join(h.dir, 'silence.alaw'), Buffer.alloc(8000, 0xd5));
  h.relayLog = [];
  const relayLog = h.relayLog;
  const config = loadConfig([
    '--listen-ng=127.0.0.1:0',
    `--interface=${relayAddress}`,
    `--port-min=${relayPorts.min}`,
    `--port-max=${relayPorts.max}`,
    '--delete-delay=0',
    '--num-threads=1',
  ]);
  h.running = await start(config, pino({ level: 'info' }, { write: (line: string) => void relayLog.push(line) }));
  const ngPort = h.running.ng.addresses().udp?.port;
  if (!ngPort) throw new Error('rtphub has no UDP ng socket');
  h.ng = new NgClient({ host: '127.0.0.1', port: ngPort, timeoutMs: 500 });

  h.peers = new PeerGroup();
  const cfg = path.join(h.dir, 'kamailio.cfg');
  h.kamailioPort = await freeUdpPort(sipPorts.min, sipPorts.max);
  fs.writeFileSync(cfg, kamailioConfig(h.kamailioPort, ngPort));
  const run = path.join(h.dir, 'run');
  fs.mkdirSync(run);
  h.kamailio = h.peers.spawn(
    'kamailio',
    kamailioBinary,
    ['-DD', '-E', '-f', cfg, '-P', path.join(run, 'kamailio.pid'), '-Y', run, '-w', h.dir, '-m', '32', '-M', '4'],
    h.dir,
  );
  await waitForSipProxy(h.kamailio, h.kamailioPort);

  h.uasLog = path.join(h.dir, 'uas-logs.log');
  h.uasPort = await freeUdpPort(sipPorts.min, sipPorts.max);
  const uasMedia = await sippMediaPort();
  h.uas = h.peers.spawn(
    'sipp uas',
    sippBinary,
    [
      '-sf', path.join(scenarios, 'uas.xml'),
      '-i', '127.0.0.1', '-p', String(h.uasPort),
      '-mi', '127.0.0.1', '-mp', String(uasMedia), '-rtp_echo',
      '-nostdin', '-timeout', '85s',
      '-trace_logs', '-log_file', h.uasLog,
      '-trace_err', '-error_file', path.join(h.dir, 'uas-errors.log'),
    ],
    h.dir,
  );
  await waitForUdpPort(h.uas, h.uasPort);
});

test.after.always(async () => {
  harness.ng?.close();
  await harness.peers?.stopAll();
  await harness.running?.stop();
  if (harness.dir) fs.rmSync(harness.dir, { recursive: true, force: true });
});

function kamailioConfig(sipPort: number, ngPort: number): string {
  const template = fs.readFileSync(path.join(scenarios, 'kamailio.cfg'), 'utf8');
  return template
    .replaceAll('@SIP_PORT@', String(sipPort))
    .replaceAll('@NG_PORT@', String(ngPort));
}

/** An even media port for SIPp: it binds the port (audio) and the port + 2 (video). */
function sippMediaPort(): Promise<number> {
  return freeUdpPort(sippMediaPorts.min, sippMediaPorts.max, 2, [0, 2]);
}

/** The harness, or null after logging why the test is skipped. */
function ready(t: ExecutionContext): Harness | null {
  if (missing.length > 0) {
    t.log(`skipped: ${missing.join(' and ')} not installed (Debian packages kamailio and sip-tester)`);
    t.pass();
    return null;
  }
  return harness as Harness;
}

interface CallOptions {
  name: string;
  calls: number;
  rate: number;
  durationMs: number;
  timeoutS: number;
}

/** Starts a SIPp UAC placing `calls` calls at `rate` per second through Kamailio to the UAS. */
async function placeCalls(h: Harness, o: CallOptions): Promise<{ uac: PeerProcess; log: string }> {
  const log = path.join(h.dir, `${o.name}-logs.log`);
  const sipPort = await freeUdpPort(sipPorts.min, sipPorts.max);
  const mediaPort = await sippMediaPort();
  const uac = h.peers.spawn(
    `sipp uac ${o.name}`,
    sippBinary,
    [
      `127.0.0.1:${h.uasPort}`,
      '-sf', path.join(scenarios, 'uac.xml'),
      '-s', 'interop',
      '-i', '127.0.0.1', '-p', String(sipPort),
      '-rsa', `127.0.0.1:${h.kamailioPort}`,
      '-mi', '127.0.0.1', '-mp', String(mediaPort),
      '-m', String(o.calls), '-l', String(o.calls), '-r', String(o.rate),
      '-d', String(o.durationMs),
      '-nostdin', '-timeout', `${o.timeoutS}s`, '-timeout_error',
      '-trace_logs', '-log_file', log,
      '-trace_err', '-error_file', path.join(h.dir, `${o.name}-errors.log`),
    ],
    h.dir,
  );
  return { uac, log };
}

/** Everything worth reading when a call fails: SIPp's screen and errors, Kamailio's log. */
function diagnostics(h: Harness, uac: PeerProcess, name: string): string {
  const errors = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(-4096) : '(none)');
  return [
    uac.output(4096),
    `--- ${name} errors ---\n${errors(path.join(h.dir, `${name}-errors.log`))}`,
    `--- uas errors ---\n${errors(path.join(h.dir, 'uas-errors.log'))}`,
    h.kamailio.output(8192),
    `--- rtphub log ---\n${h.relayLog.slice(-20).join('')}`,
  ].join('\n');
}

interface Snapshot {
  offer: number;
  answer: number;
  delete: number;
  /** Error replies to Kamailio's commands (the test's own queries may race a call's end). */
  errors: number;
  /** Keys, flags and values of requests that rtphub did not understand. */
  warnings: number;
  forwarded: number;
}

const signalling = ['offer', 'answer', 'delete'] as const;

function snapshot(running: Running): Snapshot {
  const commands = running.ng.counters.commands;
  const count = (name: string): number => commands[name]?.count ?? 0;
  return {
    offer: count('offer'),
    answer: count('answer'),
    delete: count('delete'),
    errors: signalling.reduce((sum, name) => sum + (commands[name]?.errors ?? 0), 0),
    warnings: running.ng.counters.warnings,
    forwarded: running.relay.stats().packets_forwarded ?? 0,
  };
}

/** Per tag of a `query` reply: the relay's local RTP port on that party's leg and RTP packets received from it. */
interface TagMedia {
  tag: string;
  localPort: number;
  packets: number;
}

function tagMedia(reply: BDict): TagMedia[] {
  const plain = toPlain(reply) as { tags?: Record<string, { medias?: { streams?: Record<string, unknown>[] }[] }> };
  return Object.entries(plain.tags ?? {}).map(([tag, entry]) => {
    const rtp = entry.medias?.[0]?.streams?.find((s) => Array.isArray(s.flags) && s.flags.includes('RTP'));
    const stats = (rtp?.stats ?? {}) as { packets?: number };
    return { tag, localPort: Number(rtp?.['local port'] ?? 0), packets: Number(stats.packets ?? 0) };
  });
}

async function callIds(ng: NgClient): Promise<string[]> {
  const reply = await ng.request({ command: 'list' });
  const calls: BEncodable = reply.calls ?? [];
  return Array.isArray(calls) ? calls.map((c) => c.toString()) : [];
}

/** The media of `callId` as rtphub reports it, or null once the call is gone. */
async function queryMedia(ng: NgClient, callId: string): Promise<TagMedia[] | null> {
  const reply = await ng.request({ command: 'query', 'call-id': callId });
  return reply.result?.toString() === 'ok' ? tagMedia(reply) : null;
}

const bothWays = (media: TagMedia[] | null | undefined): boolean => media?.length === 2 && media.every((m) => m.packets > 0);

/** Waits until the relay reports RTP received from both parties of `callId`; returns that query. */
async function bothWaysMedia(ng: NgClient, callId: string, timeoutMs: number): Promise<TagMedia[]> {
  let media: TagMedia[] | null = null;
  await waitFor(
    async () => bothWays((media = await queryMedia(ng, callId))),
    `RTP from both parties of ${callId} (last query: ${JSON.stringify(media)})`,
    timeoutMs,
  );
  return media ?? [];
}

/**
 * Polls rtphub (list, then query each call) until the UAC exits: for every call seen, whether RTP
 * from both parties was seen while it was up, and the most calls up at once.
 */
async function watchCalls(h: Harness, uac: PeerProcess): Promise<{ relayed: Map<string, boolean>; peak: number }> {
  const relayed = new Map<string, boolean>();
  let peak = 0;
  while (uac.running) {
    const ids = await callIds(h.ng);
    peak = Math.max(peak, ids.length);
    for (const id of ids) {
      if (relayed.get(id)) continue;
      relayed.set(id, bothWays(await queryMedia(h.ng, id)));
    }
    await delay(100);
  }
  return { relayed, peak };
}

/** The ng error counts and the relay's error log lines, for a failure message. */
function relayErrors(h: Harness): string {
  const errors = h.relayLog.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
  return `ng errors: ${JSON.stringify(h.running.ng.counters.errors)}\n${errors.slice(-3).join('')}`;
}

/** The relay's warnings about requests it did not fully understand. */
function relayWarnings(h: Harness): string {
  return h.relayLog.filter((line) => (JSON.parse(line) as { level: number }).level === 40).slice(-5).join('');
}

function inRelayRange(sdp: LoggedSdp): boolean {
  return sdp.address === relayAddress && sdp.port >= relayPorts.min && sdp.port <= relayPorts.max;
}

test.serial('one call through Kamailio: the relay anchors the media both ways and ends the call on BYE', async (t) => {
  const h = ready(t);
  if (!h) return;
  const before = snapshot(h.running);
  const { uac, log } = await placeCalls(h, { name: 'single', calls: 1, rate: 1, durationMs: 2500, timeoutS: 20 });

  await waitFor(() => h.running.calls.size === 1 || !uac.running, 'the offer to reach rtphub', 5000);
  const [callId] = await callIds(h.ng);
  if (!callId) {
    t.fail(`rtphub lists no call while the UAC runs\n${diagnostics(h, uac, 'single')}`);
    return;
  }
  const media = await bothWaysMedia(h.ng, callId, 2000);

  const exit = await uac.exitWithin(15000);
  t.is(exit.code, 0, `SIPp UAC: the call completed\n${diagnostics(h, uac, 'single')}`);

  const answer = loggedSdp(log, 'answer').filter((s) => s.callId === callId);
  const offer = loggedSdp(h.uasLog, 'offer').filter((s) => s.callId === callId);
  t.is(answer.length, 1, 'the UAC logged the answer SDP it received');
  t.is(offer.length, 1, 'the UAS logged the offer SDP it received');
  t.true(offer.every(inRelayRange), `the offer reaching the UAS points at rtphub: ${JSON.stringify(offer)}`);
  t.true(answer.every(inRelayRange), `the answer reaching the UAC points at rtphub: ${JSON.stringify(answer)}`);
  // Each party was given the port of the leg facing it: the UAC sends to its leg, the UAS to its own.
  const byPort = (a: number, b: number): number => a - b;
  t.deepEqual(
    media.map((m) => m.localPort).sort(byPort),
    [answer[0]?.port, offer[0]?.port].sort(byPort),
    `the relay ports in the SDP are the call's legs: ${JSON.stringify(media)}`,
  );

  await waitFor(() => h.running.calls.size === 0, 'the call to end after the BYE', 3000);
  const after = snapshot(h.running);
  t.is(after.offer - before.offer, 1, 'one offer (INVITE)');
  t.is(after.answer - before.answer, 1, 'one answer (200 OK)');
  t.is(after.delete - before.delete, 1, 'one delete (BYE)');
  t.is(after.errors, before.errors, `no ng command failed\n${relayErrors(h)}`);
  t.is(after.warnings, before.warnings, `rtphub understood every key and flag Kamailio sent\n${relayWarnings(h)}`);
  t.true(after.forwarded - before.forwarded > 0, 'rtphub forwarded the RTP');
  t.is(h.running.relay.info().portsInUse, 0, 'every media port is free again');
});

test.serial('a batch of 20 calls at 10 cps through Kamailio: every call is offered, answered, relayed and deleted', async (t) => {
  const h = ready(t);
  if (!h) return;
  const calls = 20;
  const before = snapshot(h.running);
  const { uac, log } = await placeCalls(h, { name: 'batch', calls, rate: 10, durationMs: 1000, timeoutS: 30 });

  const { relayed, peak } = await watchCalls(h, uac);
  const exit = await uac.exitWithin(1000);
  t.is(exit.code, 0, `SIPp UAC: all ${calls} calls completed\n${diagnostics(h, uac, 'batch')}`);
  t.log(`peak of ${peak} calls up at once`);
  t.true(peak >= 2, 'calls overlapped');

  const answers = loggedSdp(log, 'answer');
  const ids = new Set(answers.map((a) => a.callId));
  const offers = loggedSdp(h.uasLog, 'offer').filter((o) => ids.has(o.callId));
  t.is(ids.size, calls, 'the UAC received an answer for each call');
  t.is(offers.length, calls, 'the UAS received an offer for each call');
  t.deepEqual(answers.filter((a) => !inRelayRange(a)), [], 'every answer points at rtphub');
  t.deepEqual(offers.filter((o) => !inRelayRange(o)), [], 'every offer points at rtphub');
  t.deepEqual(
    [...ids].filter((id) => !relayed.get(id)),
    [],
    'rtphub relayed RTP from both parties of every call while it was up',
  );

  await waitFor(() => h.running.calls.size === 0, 'every call to end after its BYE', 3000);
  const after = snapshot(h.running);
  t.is(after.offer - before.offer, calls, 'an offer per INVITE');
  // A 200 OK that SIPp's UAS sends again (its ACK came late on a loaded machine) passes
  // rtpengine_manage() again: one more answer for the same call, which the relay answers alike.
  const answered = after.answer - before.answer;
  t.true(answered >= calls && answered <= 2 * calls, `an answer per 200 OK, retransmissions included (${answered})`);
  t.is(after.delete - before.delete, calls, 'a delete per BYE');
  t.is(after.errors, before.errors, `no ng command failed\n${relayErrors(h)}`);
  t.is(after.warnings, before.warnings, `rtphub understood every key and flag Kamailio sent\n${relayWarnings(h)}`);
  // Each call plays about a second of 50-packet/s audio that the UAS echoes: ~100 packets a call.
  t.true(after.forwarded - before.forwarded >= calls * 50, `rtphub forwarded the RTP of every call (${after.forwarded - before.forwarded})`);
  t.is(h.running.relay.info().portsInUse, 0, 'every media port is free again');
});
