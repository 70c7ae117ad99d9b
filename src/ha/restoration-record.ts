/**
 * The restoration record of a call (seed 000, claims 11-12: a table of key/value pairs derived
 * from the signalling and the SDP, used to restore a lost call). Key: the call-id; inside it the
 * parties' tags and each media index. Value: what the SDP said (media, codecs, signalled
 * addresses, directions, rtcp-mux), what the signalling front kept (labels: SIP headers), and
 * the relay's state of each media stream as the data plane's own versioned record (local
 * address and ports, learned endpoints, learning mode, SSRC, counters).
 *
 * Encoding: a bencode dictionary with a record format version `f`. A relay decodes every format
 * version up to its own and ignores keys it does not know, so two relay versions replicate
 * during a rolling upgrade. Decoding checks every field and throws RecordFormatError.
 */
import { RecordFormatError } from '../errors';
import type { Endpoint } from '../native/types';
import { BDict, BEncodable, BValue, decode, encode, isBytes, isDict, isList } from '../ng/bencode';

export const RECORD_FORMAT_VERSION = 1;

export interface CodecRecord {
  payloadType: number;
  name: string;
  clockRate?: number;
  channels?: number;
  fmtp?: string;
}

export interface SideRecord {
  signalled: Endpoint | null;
  signalledRtcp: Endpoint | null;
  learned: Endpoint | null;
  learnedRtcp: Endpoint | null;
  rtcpMux: boolean;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: CodecRecord[];
  interfaceName: string;
  initialized: boolean;
  send: boolean;
  recv: boolean;
  ice: boolean;
  singlePort: boolean;
}

export interface MediaRecord {
  index: number;
  type: string;
  protocol: string;
  rejected: boolean;
  offererOfferedMux: boolean;
  relayOfferedMux: boolean;
  answerDecidesMux: boolean;
  a: SideRecord;
  b: SideRecord;
  /** The data plane's record of the stream (native/snapshot), or null when it has none. */
  stream: Buffer | null;
}

export interface PartyRecord {
  tag: string;
  viaBranch?: string;
  /** Key/value pairs from the signalling front (SIP: From, To, Contact, route set, CSeq, ...). */
  labels: Record<string, string>;
}

export interface CallRecord {
  callId: string;
  /** Grows with every change that matters (offer, answer, endpoint learned). */
  version: number;
  /** The relay that owns (forwards) the call, and its epoch when it wrote this version. */
  owner: string;
  epoch: number;
  /** Unix ms when this version was written (replication lag is measured against it). */
  writtenAt: number;
  created: number;
  lastSignal: number;
  answered: boolean;
  /** When the call was first answered (Unix ms), for the call record of a relay that adopts it. */
  answeredAt?: number;
  sideA: string | null;
  sideB: string | null;
  parties: PartyRecord[];
  media: MediaRecord[];
  /** What the relay last sent each side (for `replace` session-name / sdp-version). */
  sent: { a: SentRecord; b: SentRecord };
  untaggedViaBranch?: string;
  /** A delete with a delay was received: the call ends this many ms after the record was written. */
  deleteInMs?: number;
}

export interface SentRecord {
  sessionName?: string;
  /** o= version as decimal text (64-bit). */
  version?: string;
  last?: Buffer;
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

function endpoint(e: Endpoint | null): BEncodable {
  return e ? [e.address, e.port] : [];
}

function side(s: SideRecord): BEncodable {
  return {
    s: endpoint(s.signalled),
    sr: endpoint(s.signalledRtcp),
    l: endpoint(s.learned),
    lr: endpoint(s.learnedRtcp),
    m: s.rtcpMux ? 1 : 0,
    d: s.direction,
    c: s.codecs.map((c) => [c.payloadType, c.name, c.clockRate ?? 0, c.channels ?? 0, c.fmtp ?? '']),
    i: s.interfaceName,
    fl: (s.initialized ? 1 : 0) | (s.send ? 2 : 0) | (s.recv ? 4 : 0) | (s.ice ? 8 : 0) | (s.singlePort ? 16 : 0),
  };
}

function sent(s: SentRecord): BEncodable {
  return { n: s.sessionName, v: s.version, l: s.last };
}

export function encodeRecord(r: CallRecord): Buffer {
  return encode({
    f: RECORD_FORMAT_VERSION,
    id: r.callId,
    v: r.version,
    o: r.owner,
    e: r.epoch,
    w: r.writtenAt,
    cr: r.created,
    ls: r.lastSignal,
    an: r.answered ? 1 : 0,
    sa: r.sideA ?? '',
    sb: r.sideB ?? '',
    p: r.parties.map((p) => ({ t: p.tag, vb: p.viaBranch ?? '', lb: p.labels })),
    md: r.media.map((m) => ({
      x: m.index,
      t: m.type,
      pr: m.protocol,
      rj: m.rejected ? 1 : 0,
      om: m.offererOfferedMux ? 1 : 0,
      rm: m.relayOfferedMux ? 1 : 0,
      ad: m.answerDecidesMux ? 1 : 0,
      a: side(m.a),
      b: side(m.b),
      st: m.stream ?? '',
    })),
    sn: { a: sent(r.sent.a), b: sent(r.sent.b) },
    uv: r.untaggedViaBranch,
    dl: r.deleteInMs,
    aa: r.answeredAt,
  });
}

/** Reads fields with a path for error messages; every accessor throws RecordFormatError. */
class Fields {
  constructor(
    private readonly entries: BDict,
    private readonly path: string,
  ) {}

  private fail(key: string, what: string): never {
    throw new RecordFormatError(`invalid restoration record: ${this.path}${key} ${what}`);
  }

  raw(key: string): BValue {
    const v = this.entries[key];
    if (v === undefined) this.fail(key, 'is missing');
    return v;
  }

  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || v < min || v > max) this.fail(key, `must be an integer in ${min}..${max}`);
    return v;
  }

  flag(key: string): boolean {
    return this.int(key, 0, 1) === 1;
  }

  has(key: string): boolean {
    return this.entries[key] !== undefined;
  }

  text(key: string, maxLength = 4096): string {
    const v = this.raw(key);
    if (!isBytes(v) || v.length > maxLength) this.fail(key, `must be a string of at most ${maxLength} bytes`);
    return v.toString('utf8');
  }

  bytes(key: string): Buffer {
    const v = this.raw(key);
    if (!isBytes(v)) this.fail(key, 'must be bytes');
    return Buffer.from(v);
  }

  list(key: string): BValue[] {
    const v = this.raw(key);
    if (!isList(v)) this.fail(key, 'must be a list');
    return v;
  }

  dict(key: string): Fields {
    const v = this.raw(key);
    if (!isDict(v)) this.fail(key, 'must be a dictionary');
    return new Fields(v, `${this.path}${key}.`);
  }

  endpoint(key: string): Endpoint | null {
    const v = this.list(key);
    if (v.length === 0) return null;
    const [address, port] = v;
    if (v.length !== 2 || !isBytes(address) || typeof port !== 'number' || port < 0 || port > 65535) {
      this.fail(key, 'must be [address, port] or []');
    }
    return { address: address.toString('latin1'), port };
  }

  labels(key: string): Record<string, string> {
    const v = this.raw(key);
    if (!isDict(v)) this.fail(key, 'must be a dictionary');
    const out: Record<string, string> = {};
    for (const [k, value] of Object.entries(v)) {
      if (!isBytes(value)) this.fail(`${key}.${k}`, 'must be a string');
      out[k] = value.toString('utf8');
    }
    return out;
  }

  static of(value: BValue, path: string): Fields {
    if (!isDict(value)) throw new RecordFormatError(`invalid restoration record: ${path} must be a dictionary`);
    return new Fields(value, path === '' ? '' : `${path}.`);
  }
}

function readCodec(value: BValue, path: string): CodecRecord {
  if (!isList(value) || value.length !== 5) throw new RecordFormatError(`invalid restoration record: ${path} must be a 5-item codec list`);
  const [pt, name, rate, channels, fmtp] = value;
  if (typeof pt !== 'number' || pt < 0 || pt > 127 || !isBytes(name) || typeof rate !== 'number' || typeof channels !== 'number' || !isBytes(fmtp)) {
    throw new RecordFormatError(`invalid restoration record: ${path} has a malformed codec`);
  }
  const codec: CodecRecord = { payloadType: pt, name: name.toString('utf8') };
  if (rate > 0) codec.clockRate = rate;
  if (channels > 0) codec.channels = channels;
  if (fmtp.length > 0) codec.fmtp = fmtp.toString('utf8');
  return codec;
}

function readSide(f: Fields): SideRecord {
  const direction = f.text('d', 16);
  if (!DIRECTIONS.has(direction)) throw new RecordFormatError(`invalid restoration record: unknown direction '${direction}'`);
  const flags = f.has('fl') ? f.int('fl', 0, 31) : 0;
  return {
    signalled: f.endpoint('s'),
    signalledRtcp: f.endpoint('sr'),
    learned: f.endpoint('l'),
    learnedRtcp: f.endpoint('lr'),
    rtcpMux: f.flag('m'),
    direction: direction as SideRecord['direction'],
    codecs: f.list('c').map((c, i) => readCodec(c, `codec ${i}`)),
    interfaceName: f.text('i', 256),
    initialized: (flags & 1) !== 0,
    send: (flags & 2) !== 0,
    recv: (flags & 4) !== 0,
    ice: (flags & 8) !== 0,
    singlePort: (flags & 16) !== 0,
  };
}

function readSent(f: Fields): SentRecord {
  const out: SentRecord = {};
  if (f.has('n')) out.sessionName = f.text('n');
  if (f.has('v')) {
    out.version = f.text('v', 24);
    if (!/^\d+$/.test(out.version)) throw new RecordFormatError('invalid restoration record: sent version must be decimal');
  }
  if (f.has('l')) out.last = f.bytes('l');
  return out;
}

function readMedia(value: BValue, i: number): MediaRecord {
  const f = Fields.of(value, `md[${i}]`);
  const stream = f.bytes('st');
  return {
    index: f.int('x', 0, 1000),
    type: f.text('t', 64),
    protocol: f.text('pr', 64),
    rejected: f.flag('rj'),
    offererOfferedMux: f.flag('om'),
    relayOfferedMux: f.flag('rm'),
    answerDecidesMux: f.has('ad') ? f.flag('ad') : false,
    a: readSide(f.dict('a')),
    b: readSide(f.dict('b')),
    stream: stream.length > 0 ? stream : null,
  };
}

export function decodeRecord(bytes: Buffer): CallRecord {
  let value: BValue;
  try {
    value = decode(bytes);
  } catch (error) {
    throw new RecordFormatError(`invalid restoration record: ${(error as Error).message}`);
  }
  const f = Fields.of(value, '');
  const format = f.int('f', 1);
  if (format > RECORD_FORMAT_VERSION) {
    throw new RecordFormatError(`restoration record format ${format} is newer than this relay's (${RECORD_FORMAT_VERSION})`);
  }
  const sideA = f.text('sa', 1024);
  const sideB = f.text('sb', 1024);
  return {
    callId: f.text('id', 1024),
    version: f.int('v', 1),
    owner: f.text('o', 256),
    epoch: f.int('e'),
    writtenAt: f.int('w'),
    created: f.int('cr'),
    lastSignal: f.int('ls'),
    answered: f.flag('an'),
    sideA: sideA === '' ? null : sideA,
    sideB: sideB === '' ? null : sideB,
    parties: f.list('p').map((p, i) => {
      const pf = Fields.of(p, `p[${i}]`);
      const viaBranch = pf.text('vb', 1024);
      return { tag: pf.text('t', 1024), ...(viaBranch ? { viaBranch } : {}), labels: pf.labels('lb') };
    }),
    media: f.list('md').map(readMedia),
    sent: f.has('sn') ? { a: readSent(f.dict('sn').dict('a')), b: readSent(f.dict('sn').dict('b')) } : { a: {}, b: {} },
    ...(f.has('uv') ? { untaggedViaBranch: f.text('uv', 1024) } : {}),
    ...(f.has('dl') ? { deleteInMs: f.int('dl') } : {}),
    ...(f.has('aa') ? { answeredAt: f.int('aa') } : {}),
  };
}
