/**
 * SDP parsing in one pass over the lines, plus validation, and the per-m= summary the call
 * model needs: media type, port, protocol, connection address, RTCP port and rtcp-mux,
 * codecs, direction and ICE presence. The lines themselves are kept (`SdpDescription`), each
 * tagged with what it is to the rewriter, so `rewriteSdp` edits lines instead of a tree.
 *
 * Invariants: `parseSdp` returns only SDPs it has checked (a `v=0` and an `o=` line, at
 * least one m= line, every port in range, every active m= line with a usable IP c= line at
 * media or session level); anything else is an `SdpError`, never another exception. The
 * body is read as latin1 so every byte survives a parse/rewrite round trip. Lines end in
 * CRLF, LF or CR; a line that is not `<letter>=…` is not SDP and is left out. Field syntax
 * follows the sdp-transform grammar this parser replaced, with the same errors, except where
 * that library's quirks decided: fields are text, not numbers when they look like one (an o=
 * address, media type or protocol `0` or `NaN` was rejected for it), and of several `a=rtcp`
 * in one m= section the last counts (their fields were merged).
 */
import { isIP } from 'node:net';
import { SdpError } from './errors';

export type AddressFamily = 'IP4' | 'IP6';
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpAddress {
  family: AddressFamily;
  address: string;
}

export interface Codec {
  payloadType: number;
  /** Encoding name as written (`PCMU`, `opus`, `telephone-event`); static types are named. */
  name: string;
  clockRate?: number;
  channels?: number;
  /** The `a=fmtp` parameters, verbatim. */
  fmtp?: string;
}

/** What the call model needs from one m= line. */
export interface MediaSummary {
  /** Position among the m= lines, from 0. */
  index: number;
  type: string;
  port: number;
  protocol: string;
  /** Port 0: the stream is rejected or removed. */
  rejected: boolean;
  /** The media-level c= address, else the session-level one. */
  connection?: SdpAddress;
  /** The connection address is 0.0.0.0 or :: (old-style hold). */
  zeroAddress: boolean;
  /** From `a=rtcp:`; the address only when the attribute has one. */
  rtcp?: { port: number; address?: SdpAddress };
  rtcpMux: boolean;
  /**
   * Where the endpoint wants RTCP: the RTP port with rtcp-mux, else `a=rtcp` or RTP + 1, at
   * the `a=rtcp` address or the connection address. Absent for rejected media.
   */
  rtcpEndpoint?: { address: string; port: number };
  /** The m= line's format list, verbatim (payload types for RTP). */
  formats: string[];
  /** RTP payload types, in m= order, with their rtpmap and fmtp. Empty for non-RTP media. */
  codecs: Codec[];
  /** Media-level direction attribute, else session-level, else `sendrecv`. */
  direction: Direction;
  /** ICE attributes (ufrag, pwd or candidates) at media or session level. */
  ice: boolean;
  mid?: string;
}

export interface SdpSummary {
  origin: { username: string; sessionId: string; sessionVersion: string; address: string; family?: AddressFamily };
  /** The s= line (decoded as UTF-8). */
  sessionName: string;
  /** The session-level c= line, if any. */
  connection?: SdpAddress;
  media: MediaSummary[];
}

/** What a line is to the rewriter; a line of any other kind is passed through as it is. */
export const LineKind = {
  Other: 0,
  /** The o= line the summary was read from. */
  Origin: 1,
  /** A session-level s= line. */
  SessionName: 2,
  /** A c= line. */
  Connection: 3,
  /** A media-level `a=rtcp:`. */
  Rtcp: 4,
  /** A media-level `a=rtcp-mux` (or an attribute spelt with that prefix, such as `rtcp-mux-only`). */
  RtcpMux: 5,
  /** `a=ice-…` (any case), `a=candidate:`, `a=end-of-candidates`, `a=remote-candidates:`. */
  Ice: 6,
} as const;

/** One m= section of `SdpDescription.lines`: from its m= line to the next one or the end. */
export interface MediaSection {
  start: number;
  end: number;
  /** Where a media-level c= line goes when the section has none: after the m= and i= lines. */
  connectionAt: number;
  /** The port's offsets in the m= line. */
  portStart: number;
  portEnd: number;
  /** Whether the section has a c= line of its own that the summary read. */
  ownConnection: boolean;
}

/** The lines of a checked SDP, each with its kind, and where its sections are. */
export interface SdpDescription {
  /** The SDP lines without their line ends. */
  lines: string[];
  /** `LineKind` of each line. */
  kinds: Uint8Array;
  media: MediaSection[];
  /** The o= fields the summary does not carry, for writing a new o= line. */
  origin: { netType: string; ipVersion: string };
}

/** A checked SDP: its summary and the lines `rewriteSdp` edits. */
export interface ParsedSdp {
  summary: SdpSummary;
  description: SdpDescription;
}

/** A c= line or an `a=rtcp` address as written: IP version digit and address. */
interface RawAddress {
  version: number;
  ip: string;
}

interface RawRtpmap {
  payloadType: number;
  name: string;
  clockRate?: number;
  channels?: number;
}

/** What one pass gathers from the session part or one m= section, checked afterwards. */
interface Scan {
  connection?: RawAddress;
  direction?: Direction;
  ice: boolean;
  rtcp?: { port: string; address?: RawAddress };
  rtcpMux: boolean;
  rtpmaps?: RawRtpmap[];
  fmtps?: Map<number, string>;
  mid?: string;
}

interface MediaScan extends Scan {
  section: MediaSection;
  /** Undefined when the m= line does not have the `<type> <port> <protocol>` shape. */
  line?: { type: string; port: string; protocol: string; formats: string };
}

interface OriginScan {
  index: number;
  username: string;
  sessionId: string;
  sessionVersion: string;
  netType: string;
  ipVersion: string;
  address: string;
}

/** What the pass over the lines gathers, before any check. */
interface LinesScan {
  kinds: Uint8Array;
  version?: string;
  origin?: OriginScan;
  sessionName?: string;
  session: Scan;
  media: MediaScan[];
}

const ORIGIN = /^o=(\S*) (\d*) (\d*) (\S*) IP(\d) (\S*)/;
const CANDIDATE = /^a=candidate:(\S*) (\d*) (\S*) (\d*) (\S*) (\d*) typ (\S*)/;

/** Parses and checks an SDP body; throws `SdpError`. */
export function parseSdp(input: Buffer | string): ParsedSdp {
  const text = typeof input === 'string' ? Buffer.from(input, 'utf8').toString('latin1') : input.toString('latin1');
  if (!startsWithVersionLine(text)) throw new SdpError('Failed to parse SDP', 'not an SDP body (no v= line first)');
  const lines = splitLines(text);
  const { kinds, version, origin, sessionName, session, media } = scanLines(lines);
  if (version !== '0') throw new SdpError('Failed to parse SDP', 'missing or unsupported v= line');
  if (!origin) throw new SdpError('Failed to parse SDP', 'missing or bad o= line');
  if (!media.length) throw new SdpError('Failed to parse SDP', 'no m= line');
  kinds[origin.index] = LineKind.Origin;
  return {
    summary: summarize(origin, sessionName, session, media),
    description: { lines, kinds, media: media.map((m) => m.section), origin: { netType: origin.netType, ipVersion: origin.ipVersion } },
  };
}

/**
 * One pass over the lines: each line's kind, and the fields of the session part and of each
 * m= section. Of a repeated field the last counts (of a payload type's rtpmap and fmtp, the
 * first); v=, o= and s= count only before the first m= line.
 */
function scanLines(lines: string[]): LinesScan {
  const scan: LinesScan = { kinds: new Uint8Array(lines.length), session: { ice: false, rtcpMux: false }, media: [] };
  const { kinds } = scan;
  let current: Scan = scan.session;
  let section: MediaSection | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    switch (line.charCodeAt(0)) {
      case 0x61 /* a */:
        kinds[i] = scanAttribute(line, current);
        break;
      case 0x63 /* c */:
        kinds[i] = LineKind.Connection;
        current.connection = connectionOf(line) ?? current.connection;
        if (section && current.connection) section.ownConnection = true;
        break;
      case 0x6d /* m */:
        if (section) section.end = i;
        section = { start: i, end: lines.length, connectionAt: i + 1, portStart: 0, portEnd: 0, ownConnection: false };
        current = scanMediaLine(line, section);
        scan.media.push(current as MediaScan);
        break;
      case 0x69 /* i */:
        if (section && section.connectionAt === i) section.connectionAt = i + 1;
        break;
      case 0x76 /* v */:
        if (!section && isDigits(line, 2, line.length)) scan.version = line.slice(2);
        break;
      case 0x6f /* o */:
        if (!section) scan.origin = originOf(line, i) ?? scan.origin;
        break;
      case 0x73 /* s */:
        if (section) break;
        kinds[i] = LineKind.SessionName;
        scan.sessionName = line.slice(2);
        break;
    }
  }
  return scan;
}

/** The summary of an SDP body; throws `SdpError`. */
export function summarizeSdp(input: Buffer | string): SdpSummary {
  return parseSdp(input).summary;
}

/** 0.0.0.0 or :: in any spelling. */
export function isZeroAddress(address: string): boolean {
  if (address === '0.0.0.0') return true;
  return /^[0:]+$/.test(address) && isIP(address) === 6;
}

// Lines.

/**
 * Character classes of latin1 text, as bits: the grammar's `\d`, `\w`, `\s` and `\S`, and the
 * few field alphabets built from them.
 */
const DIGIT = 1;
const WORD = 2;
const SPACE = 4;
const TOKEN = 8;
const PROTOCOL = 16;
const CODEC_NAME = 32;
const FMTP = 64;

const CHAR_CLASSES = (() => {
  const classes = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    const space = c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
    const digit = c >= 0x30 && c <= 0x39;
    const word = digit || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
    classes[c] =
      (digit ? DIGIT : 0) |
      (word ? WORD : 0) |
      (space ? SPACE : TOKEN) |
      (word || c === 0x2f ? PROTOCOL : 0) |
      (word || c === 0x2d || c === 0x2e ? CODEC_NAME : 0) |
      (!space || c === 0x20 ? FMTP : 0);
  }
  return classes;
})();

/** The end of the run of characters from `from` that are in one of `classes`. */
function spanEnd(s: string, from: number, classes: number): number {
  let i = from;
  while (i < s.length && (CHAR_CLASSES[s.charCodeAt(i)] & classes) !== 0) i++;
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/** Whitespace, then `v=`. */
function startsWithVersionLine(text: string): boolean {
  const i = spanEnd(text, 0, SPACE);
  return text.charCodeAt(i) === 0x76 && text.charCodeAt(i + 1) === 0x3d;
}

/** The `<letter>=…` lines of the text, split at CRLF, LF or CR. */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let cr = text.indexOf('\r');
  let lf = text.indexOf('\n');
  let start = 0;
  while (start < text.length) {
    if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
    if (lf !== -1 && lf < start) lf = text.indexOf('\n', start);
    let end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
    if (end === -1) end = text.length;
    const c = text.charCodeAt(start);
    if (end - start >= 2 && c >= 0x61 && c <= 0x7a && text.charCodeAt(start + 1) === 0x3d) lines.push(text.slice(start, end));
    start = end + (end === cr && lf === cr + 1 ? 2 : 1);
  }
  return lines;
}

/**
 * The kind of an `a=` line, noting in `scan` what the summary needs from it. Names are
 * matched as prefixes, as the grammar this replaced did (`a=sendonly` and `a=sendonly2` alike).
 */
function scanAttribute(line: string, scan: Scan): number {
  switch (line.charCodeAt(2)) {
    case 0x72 /* r */:
      if (line.startsWith('rtpmap:', 2)) return addRtpmap(line, scan);
      if (line.startsWith('rtcp:', 2)) {
        scan.rtcp = rtcpOf(line);
        return LineKind.Rtcp;
      }
      if (line.startsWith('rtcp-mux', 2)) {
        scan.rtcpMux = true;
        return LineKind.RtcpMux;
      }
      if (line.startsWith('recvonly', 2)) scan.direction = 'recvonly';
      else if (line.startsWith('remote-candidates:', 2)) return LineKind.Ice;
      return LineKind.Other;
    case 0x66 /* f */:
      if (line.startsWith('fmtp:', 2)) addFmtp(line, scan);
      return LineKind.Other;
    case 0x73 /* s */:
      if (line.startsWith('sendrecv', 2)) scan.direction = 'sendrecv';
      else if (line.startsWith('sendonly', 2)) scan.direction = 'sendonly';
      return LineKind.Other;
    case 0x69 /* i */:
      if (line.startsWith('inactive', 2)) scan.direction = 'inactive';
      else if (line.startsWith('ice-ufrag:', 2) || line.startsWith('ice-pwd:', 2)) scan.ice = true;
      return isIceAttribute(line) ? LineKind.Ice : LineKind.Other;
    case 0x49 /* I */:
      return isIceAttribute(line) ? LineKind.Ice : LineKind.Other;
    case 0x63 /* c */:
      if (!line.startsWith('candidate:', 2)) return LineKind.Other;
      if (CANDIDATE.test(line)) scan.ice = true;
      return LineKind.Ice;
    case 0x65 /* e */:
      return line.startsWith('end-of-candidates', 2) ? LineKind.Ice : LineKind.Other;
    case 0x6d /* m */:
      if (line.startsWith('mid:', 2)) scan.mid = line.slice(6, spanEnd(line, 6, TOKEN));
      return LineKind.Other;
    default:
      return LineKind.Other;
  }
}

/** `a=ice-` in any case. */
function isIceAttribute(line: string): boolean {
  return (
    (line.charCodeAt(2) | 0x20) === 0x69 &&
    (line.charCodeAt(3) | 0x20) === 0x63 &&
    (line.charCodeAt(4) | 0x20) === 0x65 &&
    line.charCodeAt(5) === 0x2d
  );
}

/** A number written plainly (no sign, no leading zero), else undefined. */
function plainNumber(s: string): number | undefined {
  if (s === '' || (s.length > 1 && s.charCodeAt(0) === 0x30) || s.length > 15) return undefined;
  return isDigits(s, 0, s.length) ? Number(s) : undefined;
}

/** `m=<type> <port> <protocol>[ <formats>]`; the section's port offsets are filled in. */
function scanMediaLine(line: string, section: MediaSection): MediaScan {
  const scan: MediaScan = { section, ice: false, rtcpMux: false };
  const typeEnd = spanEnd(line, 2, WORD);
  if (line.charCodeAt(typeEnd) !== 0x20) return scan;
  const portEnd = spanEnd(line, typeEnd + 1, DIGIT);
  if (line.charCodeAt(portEnd) !== 0x20) return scan;
  const protocolEnd = spanEnd(line, portEnd + 1, PROTOCOL);
  section.portStart = typeEnd + 1;
  section.portEnd = portEnd;
  scan.line = {
    type: line.slice(2, typeEnd),
    port: line.slice(typeEnd + 1, portEnd),
    protocol: line.slice(portEnd + 1, protocolEnd),
    formats: line.charCodeAt(protocolEnd) === 0x20 ? line.slice(protocolEnd + 1) : '',
  };
  return scan;
}

/** `c=IN IP<digit> <address>`, else undefined (the line is then ignored). */
function connectionOf(line: string): RawAddress | undefined {
  if (!line.startsWith('c=IN IP') || !isDigit(line.charCodeAt(7)) || line.charCodeAt(8) !== 0x20) return undefined;
  return { version: line.charCodeAt(7) - 0x30, ip: line.slice(9, spanEnd(line, 9, TOKEN)) };
}

function originOf(line: string, index: number): OriginScan | undefined {
  const m = ORIGIN.exec(line);
  if (!m) return undefined;
  return { index, username: m[1], sessionId: m[2], sessionVersion: m[3], netType: m[4], ipVersion: m[5], address: m[6] };
}

/** `a=rtcp:<port>[ <nettype> IP<digit> <address>]`. */
function rtcpOf(line: string): Scan['rtcp'] {
  const portEnd = spanEnd(line, 7, DIGIT);
  const port = line.slice(7, portEnd);
  if (line.charCodeAt(portEnd) !== 0x20) return { port };
  const netTypeEnd = spanEnd(line, portEnd + 1, TOKEN);
  const v = line.charCodeAt(netTypeEnd + 3);
  if (!line.startsWith(' IP', netTypeEnd) || !isDigit(v) || line.charCodeAt(netTypeEnd + 4) !== 0x20) return { port };
  return { port, address: { version: v - 0x30, ip: line.slice(netTypeEnd + 5, spanEnd(line, netTypeEnd + 5, TOKEN)) } };
}

/** `a=rtpmap:<pt> <name>[/<rate>[/<channels>]]`. */
function addRtpmap(line: string, scan: Scan): number {
  const ptEnd = spanEnd(line, 9, DIGIT);
  const payloadType = plainNumber(line.slice(9, ptEnd));
  if (line.charCodeAt(ptEnd) !== 0x20 || payloadType === undefined) return LineKind.Other;
  const nameEnd = spanEnd(line, ptEnd + 1, CODEC_NAME);
  const map: RawRtpmap = { payloadType, name: line.slice(ptEnd + 1, nameEnd) };
  let i = spanEnd(line, nameEnd, SPACE);
  if (line.charCodeAt(i) === 0x2f) {
    const rateEnd = spanEnd(line, i + 1, DIGIT);
    map.clockRate = plainNumber(line.slice(i + 1, rateEnd));
    i = spanEnd(line, rateEnd, SPACE);
    if (line.charCodeAt(i) === 0x2f) map.channels = plainNumber(line.slice(i + 1, spanEnd(line, i + 1, TOKEN)));
  }
  (scan.rtpmaps ??= []).push(map);
  return LineKind.Other;
}

/** `a=fmtp:<pt> <parameters>`; the parameters end at whitespace other than a space. */
function addFmtp(line: string, scan: Scan): void {
  const ptEnd = spanEnd(line, 7, DIGIT);
  const payloadType = plainNumber(line.slice(7, ptEnd));
  if (line.charCodeAt(ptEnd) !== 0x20 || payloadType === undefined) return;
  const fmtps = (scan.fmtps ??= new Map());
  if (fmtps.has(payloadType)) return;
  fmtps.set(payloadType, line.slice(ptEnd + 1, spanEnd(line, ptEnd + 1, FMTP)));
}

// Summary and checks, in the order of the SDP.

function summarize(origin: OriginScan, name: string | undefined, session: Scan, media: MediaScan[]): SdpSummary {
  const connection = session.connection && addressOf(session.connection);
  if (session.connection && !connection) throw new SdpError('Failed to parse SDP', 'bad session-level c= line');
  return {
    origin: {
      username: origin.username,
      sessionId: origin.sessionId,
      sessionVersion: origin.sessionVersion,
      address: origin.address,
      family: origin.ipVersion === '4' ? 'IP4' : origin.ipVersion === '6' ? 'IP6' : undefined,
    },
    sessionName: utf8Of(name ?? ''),
    connection,
    media: media.map((m, i) => summarizeMedia(session, m, i, connection)),
  };
}

/** Latin1 text (the bytes as read) decoded as UTF-8; ASCII is the same either way. */
function utf8Of(latin1: string): string {
  for (let i = 0; i < latin1.length; i++) if (latin1.charCodeAt(i) > 0x7f) return Buffer.from(latin1, 'latin1').toString('utf8');
  return latin1;
}

function summarizeMedia(session: Scan, m: MediaScan, index: number, sessionConnection: SdpAddress | undefined): MediaSummary {
  // messages are built only on failure: this runs for every m= line of every offer and answer
  const bad = (what: string): SdpError => new SdpError('Failed to parse SDP', `bad ${what}m= line ${index + 1}`);
  const port = m.line && plainNumber(m.line.port);
  if (!m.line || !m.line.type || port === undefined || port > 65535 || !m.line.protocol) throw bad('');
  const { type, protocol } = m.line;
  const own = m.connection && addressOf(m.connection);
  if (m.connection && !own) throw bad('c= line of ');
  const connection = own ?? sessionConnection;
  const rejected = port === 0;
  if (!connection && !rejected) throw new SdpError('Incomplete SDP specification', `no c= line for m= line ${index + 1}`);
  const formats = m.line.formats.split(' ').filter((f) => f !== '');
  const rtcp = m.rtcp && checkedRtcp(m.rtcp, bad);
  return {
    index,
    type,
    port,
    protocol,
    rejected,
    connection,
    zeroAddress: connection !== undefined && isZeroAddress(connection.address),
    rtcp,
    rtcpMux: m.rtcpMux,
    rtcpEndpoint: rejected || !connection ? undefined : rtcpEndpointOf(port, connection, rtcp, m.rtcpMux),
    formats,
    codecs: protocol.includes('RTP') ? codecsOf(m, formats) : [],
    direction: m.direction ?? session.direction ?? 'sendrecv',
    ice: session.ice || m.ice,
    mid: m.mid,
  };
}

function rtcpEndpointOf(
  port: number,
  connection: SdpAddress,
  rtcp: MediaSummary['rtcp'],
  mux: boolean,
): MediaSummary['rtcpEndpoint'] {
  if (mux) return { address: connection.address, port };
  return { address: rtcp?.address?.address ?? connection.address, port: rtcp?.port ?? port + 1 };
}

/** An IP address of the family it says, else undefined. */
function addressOf(c: RawAddress): SdpAddress | undefined {
  const family = c.version === 4 ? 'IP4' : c.version === 6 ? 'IP6' : undefined;
  if (!family || isIP(c.ip) !== c.version) return undefined;
  return { family, address: c.ip };
}

function checkedRtcp(r: NonNullable<Scan['rtcp']>, bad: (what: string) => SdpError): MediaSummary['rtcp'] {
  const port = plainNumber(r.port);
  if (port === undefined || port < 1 || port > 65535) throw bad('a=rtcp in ');
  if (!r.address) return { port };
  const address = addressOf(r.address);
  if (!address) throw bad('a=rtcp address in ');
  return { port, address };
}

function codecsOf(m: Scan, formats: string[]): Codec[] {
  const codecs: Codec[] = [];
  for (const f of formats) {
    const pt = Number(f);
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) continue;
    const map = rtpmapOf(m, pt);
    const fallback = STATIC_PAYLOAD_TYPES[pt];
    const codec: Codec = { payloadType: pt, name: map ? map.name : (fallback?.[0] ?? '') };
    const clockRate = map ? map.clockRate : fallback?.[1];
    const channels = map ? map.channels : fallback?.[2];
    if (clockRate !== undefined) codec.clockRate = clockRate;
    if (channels !== undefined) codec.channels = channels;
    const fmtp = m.fmtps?.get(pt);
    if (fmtp !== undefined) codec.fmtp = fmtp;
    codecs.push(codec);
  }
  return codecs;
}

/** The first rtpmap of a payload type. */
function rtpmapOf(m: Scan, payloadType: number): RawRtpmap | undefined {
  if (!m.rtpmaps) return undefined;
  for (const map of m.rtpmaps) if (map.payloadType === payloadType) return map;
  return undefined;
}

/** RFC 3551 static payload types: name, clock rate, channels. */
const STATIC_PAYLOAD_TYPES: Record<number, [string, number, number?] | undefined> = {
  0: ['PCMU', 8000], 3: ['GSM', 8000], 4: ['G723', 8000], 5: ['DVI4', 8000], 6: ['DVI4', 16000],
  7: ['LPC', 8000], 8: ['PCMA', 8000], 9: ['G722', 8000], 10: ['L16', 44100, 2], 11: ['L16', 44100],
  12: ['QCELP', 8000], 13: ['CN', 8000], 14: ['MPA', 90000], 15: ['G728', 8000], 16: ['DVI4', 11025],
  17: ['DVI4', 22050], 18: ['G729', 8000], 25: ['CelB', 90000], 26: ['JPEG', 90000], 28: ['nv', 90000],
  31: ['H261', 90000], 32: ['MPV', 90000], 33: ['MP2T', 90000], 34: ['H263', 90000],
};
