// Differential test: every scenario sends the same ng commands (and the same RTP and RTCP) to a
// real rtpengine and to rtphub, and the two transcripts, normalised, must be equal, case by case.
// Normalised means: relay ports become `relay#N` (numbered in order of appearance, `+1` for the
// RTCP port of a pair), times become `<time>`, `list` results are sorted, the few keys only
// rtpengine produces are dropped (RTPENGINE_ONLY, each with its reason), and SDP bodies are
// compared by meaning (summarizeSdp: per m= line type, port, protocol, codecs, direction, rtcp-mux,
// RTCP port, ICE, and a connection address that must be the relay's) and by the order of their
// lines (the session's line types; each active m= section's lines, a=rtcp and a=rtcp-mux placed
// included). What that leaves out: rtpengine keeps the session-level c= (rtphub writes a c= per
// m= line instead), strips every attribute of a rejected (port 0) m= line, and spells the zero
// (hold) address out as a=sendonly; where the input lacks them it adds a=rtpmap for static payload
// types and a=sendrecv, and it regroups codec attributes by payload type (the SDPs here are
// written that way already, as SIP phones write them).
//
// Both relays run with the same defaults (delete delay 30 s, timeout 60 s, delayed endpoint
// learning, so no stream is `confirmed` within a scenario); the parties are the same sockets for
// both, so their addresses and ports need no masking. Skipped (with a log line) only where
// /usr/bin/rtpengine is not installed; CI installs it.
import test from 'ava';
import dgram from 'node:dgram';
import pino from 'pino';
import { Running, start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import { BEncodable, PlainValue, decode, toPlain } from '../../src/ng/bencode';
import { NgClient } from '../../src/ng/client';
import { MediaSummary, summarizeSdp } from '../../src/sdp/parse';
import { firstFreeUdpPort, Rtpengine, rtpengineInstalled, RTPENGINE_PATH } from '../helpers/rtpengine';
import { Party } from '../helpers/udp';

const RELAY_ADDRESS = '127.0.0.1';
/** rtpengine's ng port is the first free one of 48990..48999; rtphub's is an ephemeral one. */
const RTPENGINE = { ngPorts: [48990, 48999], portMin: 48000, portMax: 48199 };
const RTPHUB = { portMin: 48200, portMax: 48399 };
/** Where the parties' RTP/RTCP socket pairs are bound (the first free pairs from 48900 on). */
const PARTY_PORTS = { first: 48900, last: 48989, a: 0, b: 0 };

/**
 * Reply keys only rtpengine produces, dropped before comparing; each needs a reason. Keep it short:
 * where a SIP server could notice a difference, rtphub is changed instead.
 */
const RTPENGINE_ONLY: ReadonlyArray<{ path: RegExp; reason: string }> = [
  {
    path: /\/medias\[\d+\]\/streams\[1\]\/SSRC$/,
    reason:
      "the RTCP stream's SSRC (the sender SSRC of the last RTCP packet): the data plane records the SSRC of RTP " +
      'packets only (leg counter last_ssrc); the RTP stream reports its SSRC as rtpengine does',
  },
];

type Plain = PlainValue;
type Dict = { [key: string]: Plain };

interface Target {
  ngPort: number;
  portMin: number;
  portMax: number;
  client: NgClient;
}

interface Parties {
  a: { rtp: Party; rtcp: Party };
  b: { rtp: Party; rtcp: Party };
}

const TIME_KEYS = new Set(['created', 'created_us', 'last signal', 'last packet']);

/**
 * Relay ports, numbered in order of first appearance: an RTP port is `relay#N`, an RTCP port is
 * `relay#N+1` when it is RTP port N + 1 and `relay#N` with rtcp-mux. Parity is not compared: where
 * rtpengine needs a single port (rtcp-mux settled in the offer) it may take an odd one.
 */
class PortMask {
  private readonly rtp = new Map<number, number>();

  constructor(private readonly target: Target) {}

  private inRange(port: number): boolean {
    return port >= this.target.portMin && port <= this.target.portMax;
  }

  rtpPort(port: number): Plain {
    if (!this.inRange(port)) return port;
    if (!this.rtp.has(port)) this.rtp.set(port, this.rtp.size);
    return `relay#${this.rtp.get(port)}`;
  }

  rtcpPort(port: number): Plain {
    if (!this.inRange(port)) return port;
    if (this.rtp.has(port)) return `relay#${this.rtp.get(port)}`;
    if (this.rtp.has(port - 1)) return `relay#${this.rtp.get(port - 1)}+1`;
    return `relay#?${port}`;
  }
}

function sortedKeys(d: Dict): string[] {
  return Object.keys(d).sort();
}

/**
 * The direction an m= line means: the zero address (old-style hold, RFC 3264 8.4) stops media
 * towards its writer, which rtpengine spells out as `a=sendonly` (`inactive`) while rtphub keeps the
 * original attribute next to the zero address.
 */
function effectiveDirection(m: MediaSummary): string {
  if (!m.zeroAddress) return m.direction;
  if (m.direction === 'sendrecv') return 'sendonly';
  return m.direction === 'recvonly' ? 'inactive' : m.direction;
}

const DIRECTION_ATTRIBUTE = /^a=(sendrecv|sendonly|recvonly|inactive)$/;

/**
 * The order of an SDP's lines where both relays write them the same way: the session's line
 * types, and each m= section's lines after its m= line. c= lines are left out (rtphub writes one
 * per m= line, rtpengine keeps the session-level one), a direction attribute is `a=<direction>`
 * (its value is compared by meaning) and `a=rtcp` has its port masked.
 */
function lineOrder(body: string, ports: PortMask): { session: string; media: string[][] } {
  const session: string[] = [];
  const media: string[][] = [];
  for (const line of body.split('\r\n')) {
    if (line === '' || line.startsWith('c=')) continue;
    if (line.startsWith('m=')) media.push([]);
    else if (media.length) media[media.length - 1].push(maskedLine(line, ports));
    else session.push(line.slice(0, 2));
  }
  return { session: session.join(' '), media };
}

function maskedLine(line: string, ports: PortMask): string {
  if (DIRECTION_ATTRIBUTE.test(line)) return 'a=<direction>';
  const rtcp = /^a=rtcp:(\d+)(.*)$/.exec(line);
  return rtcp ? `a=rtcp:${String(ports.rtcpPort(Number(rtcp[1])))}${rtcp[2]}` : line;
}

/**
 * An SDP body by meaning, with relay ports masked, plus the order of its lines (`lineOrder`) for
 * the session and each active m= line (rtpengine drops the attributes of a rejected one).
 */
function sdpSummary(body: string, ports: PortMask): Plain {
  const s = summarizeSdp(body);
  // the RTP ports first, so that the RTCP ports in the lines are numbered after them
  const media = s.media.map((m) => mediaMeaning(m, ports));
  const order = lineOrder(body, ports);
  return {
    origin: `${s.origin.username} ${s.origin.sessionId} ${s.origin.sessionVersion} ${s.origin.address}`,
    'session name': s.sessionName,
    'session lines': order.session,
    media: media.map((m, i) => (s.media[i].rejected ? m : { ...m, lines: order.media[i] })),
  };
}

function mediaMeaning(m: MediaSummary, ports: PortMask): Dict {
  const line = { type: m.type, port: ports.rtpPort(m.port), protocol: m.protocol };
  // a rejected m= line means nothing but its type (rtpengine drops its attributes, rtphub keeps them)
  if (m.rejected) return line;
  return {
    ...line,
    connection: m.connection?.address === RELAY_ADDRESS ? '<the relay>' : (m.connection?.address ?? '<none>'),
    'rtcp-mux': m.rtcpMux ? 1 : 0,
    rtcp: m.rtcpEndpoint ? `${m.rtcpEndpoint.address}:${String(ports.rtcpPort(m.rtcpEndpoint.port))}` : '<none>',
    codecs: m.codecs.map((c) => `${c.payloadType} ${c.name}/${c.clockRate ?? ''}`),
    direction: effectiveDirection(m),
    ice: m.ice ? 1 : 0,
  };
}

/** A stream of a query reply whose first flag says RTCP (its port is the RTP one's + 1). */
function isRtcpStream(stream: Dict): boolean {
  return Array.isArray(stream.flags) && stream.flags[0] === 'RTCP';
}

function normalise(value: Plain, ports: PortMask, path: string): Plain | undefined {
  if (RTPENGINE_ONLY.some((entry) => entry.path.test(path))) return undefined;
  if (Array.isArray(value)) return value.map((v, i) => normalise(v, ports, `${path}[${i}]`) as Plain);
  if (typeof value !== 'object') return value;
  const out: Dict = {};
  for (const key of sortedKeys(value)) {
    const v = value[key];
    const at = `${path}/${key}`;
    let n: Plain | undefined;
    if (TIME_KEYS.has(key) && typeof v === 'number') n = '<time>';
    else if (key === 'local port' && typeof v === 'number') n = isRtcpStream(value) ? ports.rtcpPort(v) : ports.rtpPort(v);
    else if (key === 'sdp' && typeof v === 'string') n = sdpSummary(v, ports);
    else if (key === 'calls' && Array.isArray(v)) n = [...v].map(String).sort();
    else n = normalise(v, ports, at);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

/** One relay's run of a scenario: the replies in order, with labels. */
class Session {
  readonly steps: Array<{ step: string; reply: Plain }> = [];

  constructor(
    readonly target: Target,
    readonly parties: Parties,
  ) {}

  async ng(step: string, command: Record<string, BEncodable>): Promise<Dict> {
    const reply = toPlain(await this.target.client.request(command)) as Dict;
    this.steps.push({ step, reply });
    return reply;
  }

  async raw(step: string, payload: string): Promise<void> {
    this.steps.push({ step, reply: await rawRequest(this.target.ngPort, Buffer.from(payload, 'latin1')) });
  }

  note(step: string, reply: Plain): void {
    this.steps.push({ step, reply });
  }

  transcript(): Plain {
    const ports = new PortMask(this.target);
    return this.steps.map(({ step, reply }) => ({ step, reply: normalise(reply, ports, '') as Plain }));
  }
}

type Scenario = (s: Session) => Promise<void>;

let rtpengine: Rtpengine | undefined;
let rtphub: Running | undefined;
const targets: Target[] = [];
let parties: Parties | undefined;

/** Sends `<cookie> <payload>` and decodes the reply (bencode or JSON), or says there was none. */
function rawRequest(port: number, payload: Buffer): Promise<Plain> {
  const cookie = `raw${Math.floor(Math.random() * 1e9)}`;
  const socket = dgram.createSocket('udp4');
  return new Promise<Plain>((resolve) => {
    const timer = setTimeout(() => resolve('<no reply>'), 1500);
    socket.on('error', () => undefined);
    socket.on('message', (msg) => {
      const space = msg.indexOf(0x20);
      if (msg.toString('latin1', 0, space) !== cookie) return;
      clearTimeout(timer);
      const body = msg.subarray(space + 1);
      resolve(body[0] === 0x7b ? (JSON.parse(body.toString('utf8')) as Plain) : toPlain(decode(body)));
    });
    socket.send(Buffer.concat([Buffer.from(`${cookie} `), payload]), port, '127.0.0.1');
  }).finally(() => socket.close());
}

// SDP of the parties.

interface SdpOptions {
  session?: string;
  sessionName?: string;
  direction?: string;
  mux?: boolean;
  address?: string;
  lines?: string[];
  video?: number;
}

function sdp(port: number, o: SdpOptions = {}): string {
  const address = o.address ?? '127.0.0.1';
  const lines = [
    'v=0',
    `o=- ${o.session ?? '1'} 1 IN IP4 127.0.0.1`,
    `s=${o.sessionName ?? '-'}`,
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    `a=${o.direction ?? 'sendrecv'}`,
    ...(o.mux ? ['a=rtcp-mux'] : []),
    ...(o.lines ?? []),
  ];
  if (o.video !== undefined) lines.push(`m=video ${o.video} RTP/AVP 96`, 'a=rtpmap:96 H264/90000', 'a=sendrecv');
  return `${lines.join('\r\n')}\r\n`;
}

const offerSdp = (o: SdpOptions = {}): string => sdp(PARTY_PORTS.a, o);
const answerSdp = (o: SdpOptions = {}): string => sdp(PARTY_PORTS.b, { session: '2', ...o });

function mediaPort(reply: Dict): number {
  const m = /^m=audio (\d+)/m.exec(String(reply.sdp));
  if (!m) throw new Error(`no audio m= line in ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

function rtpPacket(seq: number, ssrc: number): Buffer {
  const packet = Buffer.alloc(12 + 160, seq & 0xff);
  packet[0] = 0x80;
  packet[1] = 0;
  packet.writeUInt16BE(seq, 2);
  packet.writeUInt32BE(seq * 160, 4);
  packet.writeUInt32BE(ssrc, 8);
  return packet;
}

/** Receives what `sent` should bring within the deadline; counts what arrived, and unchanged. */
async function collect(party: Party, sent: Buffer[]): Promise<{ received: number; unchanged: number }> {
  let received = 0;
  let unchanged = 0;
  for (const packet of sent) {
    try {
      const got = await party.receive(1000);
      received++;
      if (got.data.equals(packet)) unchanged++;
    } catch {
      break;
    }
  }
  return { received, unchanged };
}

/**
 * Sends `count` RTP packets each way: A to the port the answer gave it, B to the port the offer
 * gave it. Records what arrived (and unchanged) at the other party.
 */
async function exchange(s: Session, step: string, toA: number, toB: number, count = 3): Promise<void> {
  const { a, b } = s.parties;
  a.rtp.discard();
  b.rtp.discard();
  const fromA = Array.from({ length: count }, (_, i) => rtpPacket(i + 1, 0x1234));
  const fromB = Array.from({ length: count }, (_, i) => rtpPacket(i + 1, 0x5678));
  for (let i = 0; i < count; i++) {
    await a.rtp.send(fromA[i], { address: RELAY_ADDRESS, port: toA });
    await b.rtp.send(fromB[i], { address: RELAY_ADDRESS, port: toB });
  }
  const [atB, atA] = await Promise.all([collect(b.rtp, fromA), collect(a.rtp, fromB)]);
  s.note(step, { 'A to B': atB, 'B to A': atA });
}

/** An RTCP sender report (no report blocks) of `ssrc`. */
function senderReport(ssrc: number): Buffer {
  const packet = Buffer.alloc(28);
  packet[0] = 0x80;
  packet[1] = 200;
  packet.writeUInt16BE(6, 2);
  packet.writeUInt32BE(ssrc, 4);
  return packet;
}

/**
 * One RTCP sender report each way, sent and expected where each party's SDP puts RTCP: on the
 * RTP socket and port when the party muxes, else on its RTCP socket and the relay's RTP port + 1.
 */
async function exchangeRtcp(s: Session, step: string, call: Established): Promise<void> {
  const { a, b } = s.parties;
  const socket = (p: { rtp: Party; rtcp: Party }, mux: boolean): Party => (mux ? p.rtp : p.rtcp);
  const [fromA, fromB] = [senderReport(0x1234), senderReport(0x5678)];
  for (const p of [a.rtp, a.rtcp, b.rtp, b.rtcp]) p.discard();
  await socket(a, call.aMux).send(fromA, { address: RELAY_ADDRESS, port: call.aMux ? call.toA : call.toA + 1 });
  await socket(b, call.bMux).send(fromB, { address: RELAY_ADDRESS, port: call.bMux ? call.toB : call.toB + 1 });
  const [atB, atA] = await Promise.all([collect(socket(b, call.bMux), [fromA]), collect(socket(a, call.aMux), [fromB])]);
  s.note(step, { 'A to B': atB, 'B to A': atA });
}

/** The relay ports facing A and B, and whether each party muxes RTCP after the offer/answer. */
interface Established {
  toA: number;
  toB: number;
  aMux: boolean;
  bMux: boolean;
}

/** Offer from A, answer from B; returns the relay ports facing A and B. */
async function establish(s: Session, callId: string, offer: SdpOptions = {}, answer: SdpOptions = {}, extra: Record<string, BEncodable> = {}): Promise<Established> {
  const o = await s.ng('offer', { command: 'offer', 'call-id': callId, 'from-tag': 'ftag', sdp: offerSdp(offer), ...extra });
  const a = await s.ng('answer', { command: 'answer', 'call-id': callId, 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: answerSdp(answer) });
  const muxed = (reply: Dict): boolean => summarizeSdp(String(reply.sdp)).media[0].rtcpMux;
  return { toA: mediaPort(a), toB: mediaPort(o), aMux: muxed(a), bMux: muxed(o) && !!answer.mux };
}

async function cleanup(s: Session, callId: string): Promise<void> {
  await s.ng('delete (cleanup)', { command: 'delete', 'call-id': callId, 'from-tag': 'ftag', 'delete-delay': 0 });
}

async function run(target: Target, scenario: Scenario): Promise<Plain> {
  if (!parties) throw new Error('parties not open');
  const session = new Session(target, parties);
  await scenario(session);
  return session.transcript();
}

/** `path: value` lines of a transcript, for a failure message that names each difference. */
function flatten(value: Plain, path: string, out: Map<string, string>): Map<string, string> {
  if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  else if (typeof value === 'object') for (const key of sortedKeys(value)) flatten(value[key], `${path}/${key}`, out);
  else out.set(path, JSON.stringify(value));
  return out;
}

function differences(actual: Plain, expected: Plain): string {
  const a = flatten(actual, '', new Map());
  const e = flatten(expected, '', new Map());
  const paths = [...new Set([...a.keys(), ...e.keys()])].sort();
  return paths
    .filter((p) => a.get(p) !== e.get(p))
    .map((p) => `${p}: rtphub ${a.get(p) ?? '(none)'}, rtpengine ${e.get(p) ?? '(none)'}`)
    .join('\n');
}

function differential(title: string, scenario: Scenario): void {
  test.serial(title, async (t) => {
    const [engine, hub] = targets;
    const expected = await run(engine, scenario);
    const actual = await run(hub, scenario);
    t.deepEqual(actual, expected, `rtphub differs from rtpengine:\n${differences(actual, expected)}`);
  });
}

/** Binds the next free RTP/RTCP pair at or after `from` (both relays then see the same party). */
async function openPair(from: number): Promise<{ rtp: Party; rtcp: Party }> {
  for (let port = from; port < PARTY_PORTS.last; port += 2) {
    const rtp = await Party.bind('127.0.0.1', port).catch(() => undefined);
    if (!rtp) continue;
    const rtcp = await Party.bind('127.0.0.1', port + 1).catch(() => undefined);
    if (rtcp) return { rtp, rtcp };
    rtp.close();
  }
  throw new Error(`no free port pair in ${from}..${PARTY_PORTS.last}`);
}

async function openParties(): Promise<Parties> {
  const a = await openPair(PARTY_PORTS.first);
  const b = await openPair(a.rtp.port + 2);
  PARTY_PORTS.a = a.rtp.port;
  PARTY_PORTS.b = b.rtp.port;
  return { a, b };
}

if (!rtpengineInstalled()) {
  test('differential against rtpengine', (t) => {
    t.log(`${RTPENGINE_PATH} is not installed: the differential test did not run`);
    t.pass();
  });
} else {
  test.before(async () => {
    const ngPort = await firstFreeUdpPort(RTPENGINE.ngPorts[0], RTPENGINE.ngPorts[1]);
    rtpengine = await Rtpengine.start({ ngPort, portMin: RTPENGINE.portMin, portMax: RTPENGINE.portMax });
    const config = loadConfig([
      `--interface=${RELAY_ADDRESS}`,
      '--listen-ng=127.0.0.1:0',
      `--port-min=${RTPHUB.portMin}`,
      `--port-max=${RTPHUB.portMax}`,
      '--num-threads=1',
    ]);
    rtphub = await start(config, pino({ level: 'silent' }));
    const hubPort = rtphub.ng.addresses().udp?.port ?? 0;
    const client = (port: number): NgClient => new NgClient({ host: '127.0.0.1', port, timeoutMs: 1000, attempts: 3 });
    targets.push({ ngPort, portMin: RTPENGINE.portMin, portMax: RTPENGINE.portMax, client: client(ngPort) });
    targets.push({ ngPort: hubPort, ...RTPHUB, client: client(hubPort) });
    parties = await openParties();
  });

  test.after.always(async () => {
    for (const target of targets) target.client.close();
    for (const p of parties ? [parties.a, parties.b] : []) {
      p.rtp.close();
      p.rtcp.close();
    }
    await rtphub?.stop();
    await rtpengine?.stop();
  });

  differential('ping', async (s) => {
    await s.ng('ping', { command: 'ping' });
  });

  differential('offer, answer, RTP both ways, query, list, delete', async (s) => {
    const call = await establish(s, 'd-basic', {}, {}, { replace: ['origin'], 'via-branch': 'z9hG4bK1' });
    await exchange(s, 'rtp', call.toA, call.toB);
    await exchangeRtcp(s, 'rtcp', call);
    await s.ng('query', { command: 'query', 'call-id': 'd-basic' });
    await s.ng('query by from-tag', { command: 'query', 'call-id': 'd-basic', 'from-tag': 'ftag' });
    await s.ng('query by unknown tag', { command: 'query', 'call-id': 'd-basic', 'from-tag': 'nope' });
    await s.ng('list', { command: 'list' });
    await s.ng('delete', { command: 'delete', 'call-id': 'd-basic', 'from-tag': 'ftag', 'to-tag': 'ttag', 'delete-delay': 0 });
    await s.ng('query after delete', { command: 'query', 'call-id': 'd-basic' });
    await s.ng('list after delete', { command: 'list' });
  });

  differential('offer only: query shows the untagged callee', async (s) => {
    const o = await s.ng('offer', { command: 'offer', 'call-id': 'd-offer-only', 'from-tag': 'ftag', sdp: offerSdp() });
    await s.parties.b.rtp.send(rtpPacket(1, 0x99), { address: RELAY_ADDRESS, port: mediaPort(o) });
    await new Promise((r) => setTimeout(r, 100));
    await s.ng('query', { command: 'query', 'call-id': 'd-offer-only' });
    await cleanup(s, 'd-offer-only');
  });

  differential('re-offer keeps the ports, hold and resume', async (s) => {
    await establish(s, 'd-reoffer');
    await s.ng('re-offer', { command: 'offer', 'call-id': 'd-reoffer', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: offerSdp() });
    await s.ng('hold offer', { command: 'offer', 'call-id': 'd-reoffer', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: offerSdp({ direction: 'sendonly' }) });
    await s.ng('hold answer', { command: 'answer', 'call-id': 'd-reoffer', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: answerSdp({ direction: 'recvonly' }) });
    await s.ng('query on hold', { command: 'query', 'call-id': 'd-reoffer' });
    await s.ng('callee re-offer', { command: 'offer', 'call-id': 'd-reoffer', 'from-tag': 'ttag', 'to-tag': 'ftag', sdp: answerSdp() });
    await s.ng('caller answer', { command: 'answer', 'call-id': 'd-reoffer', 'from-tag': 'ttag', 'to-tag': 'ftag', sdp: offerSdp() });
    await s.ng('query resumed', { command: 'query', 'call-id': 'd-reoffer' });
    await cleanup(s, 'd-reoffer');
  });

  differential('a second m= line, then rejected with port 0', async (s) => {
    await establish(s, 'd-video', { video: PARTY_PORTS.a + 10 }, { video: PARTY_PORTS.b + 10 });
    await s.ng('offer rejecting video', { command: 'offer', 'call-id': 'd-video', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: offerSdp({ video: 0 }) });
    await s.ng('answer rejecting video', { command: 'answer', 'call-id': 'd-video', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: answerSdp({ video: 0 }) });
    await cleanup(s, 'd-video');
  });

  differential('zero (hold) address in the answer', async (s) => {
    await establish(s, 'd-zero', {}, { address: '0.0.0.0' });
    await s.ng('query', { command: 'query', 'call-id': 'd-zero' });
    await cleanup(s, 'd-zero');
  });

  // `rtcp`: also send RTCP each way. Not where rtpengine answers a non-muxing offerer with an RTCP
  // port it never opened (`require`: it allocates a single port for that side); rtphub opens it.
  const muxCases: Array<{ title: string; offerMux: boolean; answerMux: boolean; flags: string[]; rtcp: boolean }> = [
    { title: 'both sides mux', offerMux: true, answerMux: true, flags: [], rtcp: true },
    { title: 'offerer muxes, answerer does not', offerMux: true, answerMux: false, flags: [], rtcp: true },
    { title: 'rtcp-mux offer', offerMux: false, answerMux: true, flags: ['offer'], rtcp: true },
    { title: 'rtcp-mux demux', offerMux: true, answerMux: false, flags: ['demux'], rtcp: true },
    { title: 'rtcp-mux accept', offerMux: true, answerMux: false, flags: ['accept'], rtcp: true },
    { title: 'rtcp-mux reject', offerMux: true, answerMux: true, flags: ['reject'], rtcp: true },
    { title: 'rtcp-mux require', offerMux: true, answerMux: true, flags: ['require'], rtcp: true },
    { title: 'rtcp-mux require towards a non-muxing offerer', offerMux: false, answerMux: true, flags: ['require'], rtcp: false },
  ];
  for (const c of muxCases) {
    differential(`rtcp-mux: ${c.title}`, async (s) => {
      const callId = `d-mux-${c.title.replace(/\W+/g, '-')}`;
      const call = await establish(s, callId, { mux: c.offerMux }, { mux: c.answerMux }, { 'rtcp-mux': c.flags });
      await exchange(s, 'rtp', call.toA, call.toB);
      if (c.rtcp) await exchangeRtcp(s, 'rtcp', call);
      await s.ng('query', { command: 'query', 'call-id': callId });
      await cleanup(s, callId);
    });
  }

  differential('ICE remove, replace origin and session-name', async (s) => {
    const ice = ['a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdef012345', 'a=candidate:1 1 UDP 2130706431 127.0.0.1 48900 typ host'];
    const replace = ['origin', 'session-name'];
    const offer = { lines: ice, sessionName: 'caller session' };
    await s.ng('offer', { command: 'offer', 'call-id': 'd-ice', 'from-tag': 'ftag', sdp: offerSdp(offer), ICE: 'remove', replace });
    await s.ng('answer', { command: 'answer', 'call-id': 'd-ice', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: answerSdp({ sessionName: 'callee' }), ICE: 'remove', replace });
    const changed = { ...offer, sessionName: 'renamed' };
    await s.ng('re-offer with a new s=', { command: 'offer', 'call-id': 'd-ice', 'from-tag': 'ftag', 'to-tag': 'ttag', sdp: offerSdp(changed), ICE: 'remove', replace });
    await cleanup(s, 'd-ice');
  });

  differential('delete with a delay: still queryable and forwarding, then gone', async (s) => {
    const { toA, toB } = await establish(s, 'd-delay');
    await s.ng('delete', { command: 'delete', 'call-id': 'd-delay', 'from-tag': 'ftag', 'delete-delay': 1 });
    await s.ng('query during the delay', { command: 'query', 'call-id': 'd-delay' });
    await exchange(s, 'rtp during the delay', toA, toB);
    await s.ng('delete again during the delay', { command: 'delete', 'call-id': 'd-delay', 'from-tag': 'ftag', 'delete-delay': 1 });
    await new Promise((r) => setTimeout(r, 3000));
    await s.ng('query after the delay', { command: 'query', 'call-id': 'd-delay' });
  });

  differential('delete without from-tag, with unknown tags, unknown call-id, fatal', async (s) => {
    await establish(s, 'd-del');
    await s.ng('delete with an unknown from-tag', { command: 'delete', 'call-id': 'd-del', 'from-tag': 'nope', 'delete-delay': 0 });
    await s.ng('fatal delete with an unknown from-tag', { command: 'delete', 'call-id': 'd-del', 'from-tag': 'nope', flags: ['fatal'] });
    await s.ng('delete without from-tag', { command: 'delete', 'call-id': 'd-del', 'delete-delay': 0 });
    await s.ng('query after delete', { command: 'query', 'call-id': 'd-del' });
    await s.ng('delete of an unknown call-id', { command: 'delete', 'call-id': 'd-none', 'from-tag': 'ftag' });
    await s.ng('fatal delete of an unknown call-id', { command: 'delete', 'call-id': 'd-none', 'from-tag': 'ftag', flags: ['fatal'] });
  });

  differential('list with limits', async (s) => {
    await establish(s, 'd-list-1');
    await establish(s, 'd-list-2');
    await s.ng('list', { command: 'list' });
    await s.ng('list limit 0', { command: 'list', limit: 0 });
    await s.ng('list limit 5', { command: 'list', limit: 5 });
    await s.ng('list limit -1', { command: 'list', limit: -1 });
    await cleanup(s, 'd-list-1');
    await cleanup(s, 'd-list-2');
  });

  differential('errors: unknown command, missing keys, unknown call-id', async (s) => {
    await s.ng('unknown command', { command: 'foobar', 'call-id': 'x' });
    await s.ng('no command', { 'call-id': 'x' });
    await s.ng('offer without call-id', { command: 'offer', 'from-tag': 'f', sdp: offerSdp() });
    await s.ng('offer without from-tag', { command: 'offer', 'call-id': 'x', sdp: offerSdp() });
    await s.ng('offer without sdp', { command: 'offer', 'call-id': 'x', 'from-tag': 'f' });
    await s.ng('answer without to-tag', { command: 'answer', 'call-id': 'x', 'from-tag': 'f', sdp: answerSdp() });
    await s.ng('answer to an unknown call-id', { command: 'answer', 'call-id': 'd-none', 'from-tag': 'f', 'to-tag': 't', sdp: answerSdp() });
    await s.ng('query without call-id', { command: 'query' });
    await s.ng('query of an unknown call-id', { command: 'query', 'call-id': 'd-none' });
    await s.ng('delete without call-id', { command: 'delete' });
  });

  differential('errors: bad SDP', async (s) => {
    await s.ng('not SDP', { command: 'offer', 'call-id': 'd-bad', 'from-tag': 'f', sdp: 'garbage' });
    const noConnection = offerSdp().replace('c=IN IP4 127.0.0.1\r\n', '');
    await s.ng('no c= line', { command: 'offer', 'call-id': 'd-bad', 'from-tag': 'f', sdp: noConnection });
    await s.ng('list', { command: 'list' });
  });

  differential('errors: malformed messages', async (s) => {
    await s.raw('truncated bencode', 'd7:command4:pin');
    await s.raw('bencode with a bad length', 'd7:command99:pinge');
    await s.raw('command not a string', 'd7:commandi5ee');
    await s.raw('not a dictionary', 'l4:pinge');
    await s.raw('neither bencode nor JSON', 'hello');
    await s.raw('truncated JSON', '{"command":');
    await s.raw('JSON ping', '{"command":"ping"}');
  });
}
