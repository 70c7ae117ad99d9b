/**
 * SDP parsing (with sdp-transform) plus validation, and the per-m= summary the call model
 * needs: media type, port, protocol, connection address, RTCP port and rtcp-mux, codecs,
 * direction and ICE presence.
 *
 * Invariants: `parseSdp` returns only SDPs it has checked (a `v=0` and an `o=` line, at
 * least one m= line, every port in range, every active m= line with a usable IP c= line at
 * media or session level); anything else is an `SdpError`, never another exception. The
 * body is read as latin1 so every byte survives a parse/write round trip.
 */
import { isIP } from 'node:net';
import * as sdpTransform from 'sdp-transform';
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

/** A checked SDP: its summary and the sdp-transform tree that `rewriteSdp` edits. */
export interface ParsedSdp {
  summary: SdpSummary;
  description: sdpTransform.SessionDescription;
}

/** Parses and checks an SDP body; throws `SdpError`. */
export function parseSdp(input: Buffer | string): ParsedSdp {
  const text = typeof input === 'string' ? Buffer.from(input, 'utf8').toString('latin1') : input.toString('latin1');
  if (!/^\s*v=/.test(text)) throw new SdpError('Failed to parse SDP', 'not an SDP body (no v= line first)');
  let description: sdpTransform.SessionDescription;
  try {
    description = sdpTransform.parse(text);
  } catch (e) {
    throw new SdpError('Failed to parse SDP', (e as Error).message);
  }
  keepVerbatim(description);
  return { summary: summarize(description), description };
}

/**
 * Attributes sdp-transform would write back differently are kept as raw lines instead.
 * `a=msid-semantic: WMS` (no token, as Chrome sends it) would come out as
 * `a=msid-semantic:  WMS`.
 */
function keepVerbatim(d: sdpTransform.SessionDescription): void {
  if (d.msidSemantic && d.msidSemantic.semantic === '') {
    (d.invalid ??= []).push({ value: `msid-semantic: ${d.msidSemantic.token}` });
    delete d.msidSemantic;
  }
}

/** The summary of an SDP body; throws `SdpError`. */
export function summarizeSdp(input: Buffer | string): SdpSummary {
  return parseSdp(input).summary;
}

function summarize(d: sdpTransform.SessionDescription): SdpSummary {
  if (d.version !== 0) throw new SdpError('Failed to parse SDP', 'missing or unsupported v= line');
  if (!d.origin || typeof d.origin.address !== 'string') throw new SdpError('Failed to parse SDP', 'missing or bad o= line');
  if (!d.media.length) throw new SdpError('Failed to parse SDP', 'no m= line');
  const connection = d.connection ? checkedConnection(d.connection, 'session-level c= line') : undefined;
  return {
    origin: {
      username: String(d.origin.username),
      sessionId: String(d.origin.sessionId),
      sessionVersion: String(d.origin.sessionVersion),
      address: d.origin.address,
      family: d.origin.ipVer === 4 ? 'IP4' : d.origin.ipVer === 6 ? 'IP6' : undefined,
    },
    sessionName: Buffer.from(String(d.name ?? ''), 'latin1').toString('utf8'),
    connection,
    media: d.media.map((m, i) => summarizeMedia(d, m, i, connection)),
  };
}

function summarizeMedia(
  d: sdpTransform.SessionDescription,
  m: sdpTransform.MediaDescription,
  index: number,
  sessionConnection: SdpAddress | undefined,
): MediaSummary {
  const where = `m= line ${index + 1}`;
  if (!m.type || !Number.isInteger(m.port) || m.port < 0 || m.port > 65535 || !m.protocol) {
    throw new SdpError('Failed to parse SDP', `bad ${where}`);
  }
  const connection = m.connection ? checkedConnection(m.connection, `c= line of ${where}`) : sessionConnection;
  const rejected = m.port === 0;
  if (!connection && !rejected) throw new SdpError('Incomplete SDP specification', `no c= line for ${where}`);
  const formats = String(m.payloads ?? '').split(' ').filter((f) => f !== '');
  const rtcp = m.rtcp ? rtcpOf(m.rtcp, where) : undefined;
  const rtcpMux = m.rtcpMux !== undefined;
  return {
    index,
    type: m.type,
    port: m.port,
    protocol: m.protocol,
    rejected,
    connection,
    zeroAddress: connection !== undefined && isZeroAddress(connection.address),
    rtcp,
    rtcpMux,
    rtcpEndpoint: rejected || !connection ? undefined : rtcpEndpointOf(m.port, connection, rtcp, rtcpMux),
    formats,
    codecs: /RTP/.test(m.protocol) ? codecsOf(m, formats) : [],
    direction: m.direction ?? d.direction ?? 'sendrecv',
    ice: hasIce(d) || hasIce(m),
    mid: m.mid === undefined ? undefined : String(m.mid),
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

function checkedConnection(c: { version: number; ip: string }, where: string): SdpAddress {
  const family = c.version === 4 ? 'IP4' : c.version === 6 ? 'IP6' : undefined;
  const ip = String(c.ip ?? '');
  if (!family || isIP(ip) !== c.version) throw new SdpError('Failed to parse SDP', `bad ${where}`);
  return { family, address: ip };
}

function rtcpOf(r: NonNullable<sdpTransform.MediaDescription['rtcp']>, where: string): MediaSummary['rtcp'] {
  if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) {
    throw new SdpError('Failed to parse SDP', `bad a=rtcp in ${where}`);
  }
  if (r.address === undefined || r.ipVer === undefined) return { port: r.port };
  return { port: r.port, address: checkedConnection({ version: r.ipVer, ip: r.address }, `a=rtcp address in ${where}`) };
}

function codecsOf(m: sdpTransform.MediaDescription, formats: string[]): Codec[] {
  const codecs: Codec[] = [];
  for (const f of formats) {
    const pt = Number(f);
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) continue;
    const map = m.rtp.find((r) => r.payload === pt);
    const fmtp = m.fmtp.find((r) => r.payload === pt)?.config;
    const fallback = STATIC_PAYLOAD_TYPES[pt];
    const codec: Codec = map
      ? { payloadType: pt, name: map.codec, clockRate: map.rate, channels: map.encoding }
      : { payloadType: pt, name: fallback?.[0] ?? '', clockRate: fallback?.[1], channels: fallback?.[2] };
    if (codec.clockRate === undefined) delete codec.clockRate;
    if (codec.channels === undefined) delete codec.channels;
    if (fmtp !== undefined) codec.fmtp = String(fmtp);
    codecs.push(codec);
  }
  return codecs;
}

function hasIce(x: sdpTransform.SharedAttributes & { candidates?: unknown[] }): boolean {
  return x.iceUfrag !== undefined || x.icePwd !== undefined || (x.candidates?.length ?? 0) > 0;
}

/** 0.0.0.0 or :: in any spelling. */
export function isZeroAddress(address: string): boolean {
  if (address === '0.0.0.0') return true;
  return isIP(address) === 6 && /^[0:]+$/.test(address);
}

/** RFC 3551 static payload types: name, clock rate, channels. */
const STATIC_PAYLOAD_TYPES: Record<number, [string, number, number?] | undefined> = {
  0: ['PCMU', 8000], 3: ['GSM', 8000], 4: ['G723', 8000], 5: ['DVI4', 8000], 6: ['DVI4', 16000],
  7: ['LPC', 8000], 8: ['PCMA', 8000], 9: ['G722', 8000], 10: ['L16', 44100, 2], 11: ['L16', 44100],
  12: ['QCELP', 8000], 13: ['CN', 8000], 14: ['MPA', 90000], 15: ['G728', 8000], 16: ['DVI4', 11025],
  17: ['DVI4', 22050], 18: ['G729', 8000], 25: ['CelB', 90000], 26: ['JPEG', 90000], 28: ['nv', 90000],
  31: ['H261', 90000], 32: ['MPV', 90000], 33: ['MP2T', 90000], 34: ['H263', 90000],
};
