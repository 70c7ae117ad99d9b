/**
 * SDP rewriting: puts the relay into the media path of an SDP body. Per active m= line it
 * sets the port and a media-level c= to the relay's address, and sets `a=rtcp` (and
 * `a=rtcp-mux`) to the relay's RTCP arrangement; the session-level c= is dropped.
 * On request it replaces the o= address and version and the s= line, strips ICE, and
 * replaces zero (hold) addresses.
 *
 * The output is the input's lines, edited in place, as rtpengine does it: every other line
 * (attributes, codecs, b=, k=, t=, unknown ones) stays as written and where it was. An
 * active m= line's c= takes the place of its own c= line, else goes right after the m= line
 * (and its i= lines); its `a=rtcp` and `a=rtcp-mux` are removed wherever they were and the
 * relay's are appended at the end of the section, `a=rtcp` first, where rtpengine puts its
 * own. Lines end in CRLF whatever the input used.
 *
 * Invariants: rejected media (port 0) keep port 0 and every line (they get the old
 * session-level c= if they relied on it); the description given is never changed. Input is
 * checked by `parseSdp`; every failure is an `SdpError`.
 */
import { isIP } from 'node:net';
import { SdpError } from './errors';
import { LineKind, MediaSection, MediaSummary, ParsedSdp, SdpAddress, parseSdp } from './parse';

/** The relay side of one m= line. */
export interface MediaPlan {
  /** Relay address advertised for this media (IPv4 or IPv6). */
  address: string;
  /** Relay RTP port. */
  port: number;
  /** Relay RTCP port (default: the RTP port with rtcp-mux, else RTP port + 1). */
  rtcpPort?: number;
  /** Advertise rtcp-mux (`a=rtcp-mux`); default: as in the input. */
  rtcpMux?: boolean;
}

export interface RewriteOptions {
  /** One plan per m= line, in order; entries for rejected (port 0) lines are ignored. */
  media: ReadonlyArray<MediaPlan | undefined>;
  /**
   * Canonical ng `replace` items: `origin` (o= address), `session-name` (s= to
   * `sessionName`), `sdp-version` (o= version to `sdpVersion`), `zero-address` (replace
   * 0.0.0.0/:: instead of passing it through). `session-connection` needs nothing: the
   * session-level c= is always dropped.
   */
  replace?: readonly string[];
  /** s= value for `replace: session-name` (default `-`). */
  sessionName?: string;
  /** o= session version for `replace: sdp-version`. */
  sdpVersion?: number | bigint | string;
  /** o= address for `replace: origin` (default: the first plan's address). */
  originAddress?: string;
  /**
   * `remove` and `default` strip ICE attributes (the relay answers no connectivity checks,
   * so the endpoint's candidates must not leak past it; an SDP without ICE is unchanged);
   * `keep` leaves them.
   */
  ice?: 'remove' | 'default' | 'keep';
  /** `a=rtcp:PORT IN IP4 ADDR` instead of `a=rtcp:PORT` (flag `full rtcp attribute`). */
  fullRtcpAttribute?: boolean;
  /** Omit `a=rtcp` (flag `no rtcp attribute`). */
  noRtcpAttribute?: boolean;
}

const CRLF = '\r\n';

/** Rewrites an SDP body (or an already parsed one); returns the new body's bytes. */
export function rewriteSdp(input: Buffer | string | ParsedSdp, options: RewriteOptions): Buffer {
  const parsed = typeof input === 'string' || Buffer.isBuffer(input) ? parseSdp(input) : input;
  const replace = options.replace ?? [];
  const stripIce = options.ice !== 'keep';
  let out = writeSession(parsed, options, replace, stripIce);
  const { media } = parsed.description;
  for (let i = 0; i < media.length; i++) out += writeMedia(parsed, i, options, replace, stripIce);
  return Buffer.from(out, 'latin1');
}

/** The lines before the first m= line: o= and s= as asked, no c=, no ICE unless kept. */
function writeSession(parsed: ParsedSdp, options: RewriteOptions, replace: readonly string[], stripIce: boolean): string {
  const { lines, kinds, media } = parsed.description;
  const origin = originLine(parsed, options, replace);
  const name = replace.includes('session-name') ? `s=${Buffer.from(options.sessionName ?? '-', 'utf8').toString('latin1')}` : undefined;
  const hasName = name !== undefined && kinds.subarray(0, media[0].start).includes(LineKind.SessionName);
  let out = '';
  for (let i = 0; i < media[0].start; i++) {
    switch (kinds[i]) {
      case LineKind.Origin:
        out += (origin ?? lines[i]) + CRLF;
        if (name !== undefined && !hasName) out += name + CRLF;
        break;
      case LineKind.SessionName:
        out += (name ?? lines[i]) + CRLF;
        break;
      case LineKind.Connection:
        break;
      case LineKind.Ice:
        if (!stripIce) out += lines[i] + CRLF;
        break;
      default:
        out += lines[i] + CRLF;
    }
  }
  return out;
}

/** A new o= line when the address or the version is replaced, else undefined (keep it). */
function originLine(parsed: ParsedSdp, options: RewriteOptions, replace: readonly string[]): string | undefined {
  const o = parsed.summary.origin;
  let { address, sessionVersion } = o;
  let ipVersion = parsed.description.origin.ipVersion;
  let changed = false;
  if (replace.includes('origin') || replace.includes('origin-full')) {
    const relay = options.originAddress ?? options.media.find((p) => p)?.address;
    if (relay) {
      address = relay;
      ipVersion = isIP(relay) === 6 ? '6' : '4';
      changed = true;
    }
  }
  if (replace.includes('sdp-version') && options.sdpVersion !== undefined) {
    sessionVersion = String(options.sdpVersion);
    if (!/^\d+$/.test(sessionVersion)) throw new SdpError('Error rewriting SDP', `bad SDP version "${sessionVersion}"`);
    changed = true;
  }
  if (!changed) return undefined;
  return `o=${o.username} ${o.sessionId} ${sessionVersion} ${parsed.description.origin.netType} IP${ipVersion} ${address}`;
}

function writeMedia(parsed: ParsedSdp, index: number, options: RewriteOptions, replace: readonly string[], stripIce: boolean): string {
  const section = parsed.description.media[index];
  const m = parsed.summary.media[index];
  if (m.rejected) return writeRejectedMedia(parsed, section);
  const plan = options.media[index];
  if (!plan) throw new SdpError('Error rewriting SDP', `no relay port for m= line ${index + 1}`);
  const relay: SdpAddress = { family: checkedFamily(plan, index), address: plan.address };
  const { lines, kinds } = parsed.description;
  const keepZero = m.zeroAddress && !replace.includes('zero-address');
  const connection = connectionLine(keepZero && m.connection ? m.connection : relay);
  const mLine = lines[section.start];
  let out = mLine.slice(0, section.portStart) + String(plan.port) + mLine.slice(section.portEnd) + CRLF;
  let connectionDone = false;
  for (let i = section.start + 1; i < section.end; i++) {
    if (i === section.connectionAt && !section.ownConnection) {
      out += connection;
      connectionDone = true;
    }
    switch (kinds[i]) {
      case LineKind.Connection:
        if (!connectionDone) out += connection;
        connectionDone = true;
        break;
      case LineKind.Rtcp:
      case LineKind.RtcpMux:
        break;
      case LineKind.Ice:
        if (!stripIce) out += lines[i] + CRLF;
        break;
      default:
        out += lines[i] + CRLF;
    }
  }
  if (!connectionDone) out += connection;
  return out + rtcpLines(m, plan, relay, options);
}

/** A rejected m= line as it was, plus the session-level c= where it had none of its own. */
function writeRejectedMedia(parsed: ParsedSdp, section: MediaSection): string {
  const { lines } = parsed.description;
  const inherited = section.ownConnection ? undefined : parsed.summary.connection;
  let out = '';
  for (let i = section.start; i < section.end; i++) {
    if (i === section.connectionAt && inherited) out += connectionLine(inherited);
    out += lines[i] + CRLF;
  }
  if (section.connectionAt === section.end && inherited) out += connectionLine(inherited);
  return out;
}

/** Checks a plan's ports and address; returns the address family. */
function checkedFamily(plan: MediaPlan, index: number): SdpAddress['family'] {
  const portOk = (p: number) => Number.isInteger(p) && p > 0 && p <= 65535;
  if (!portOk(plan.port) || (plan.rtcpPort !== undefined && !portOk(plan.rtcpPort))) {
    throw new SdpError('Error rewriting SDP', `bad relay port for m= line ${index + 1}`);
  }
  const version = isIP(plan.address);
  if (version === 0) throw new SdpError('Error rewriting SDP', `bad relay address "${plan.address}" for m= line ${index + 1}`);
  return version === 6 ? 'IP6' : 'IP4';
}

function connectionLine(c: SdpAddress): string {
  return `c=IN ${c.family} ${c.address}${CRLF}`;
}

/** The relay's `a=rtcp` (unless omitted) and `a=rtcp-mux` (when muxing), for the end of the section. */
function rtcpLines(m: MediaSummary, plan: MediaPlan, relay: SdpAddress, options: RewriteOptions): string {
  const mux = plan.rtcpMux ?? m.rtcpMux;
  let out = '';
  if (!options.noRtcpAttribute) {
    const port = plan.rtcpPort ?? (mux ? plan.port : plan.port + 1);
    const full = options.fullRtcpAttribute ? ` IN ${relay.family} ${relay.address}` : '';
    out += `a=rtcp:${port}${full}${CRLF}`;
  }
  if (mux) out += `a=rtcp-mux${CRLF}`;
  return out;
}
