/**
 * SDP rewriting: puts the relay into the media path of an SDP body. Per active m= line it
 * sets the port and a media-level c= to the relay's address, and sets `a=rtcp` (and
 * `a=rtcp-mux`) to the relay's RTCP arrangement; the session-level c= is dropped.
 * On request it replaces the o= address and version and the s= line, strips ICE, and
 * replaces zero (hold) addresses.
 *
 * Invariants: rejected media (port 0) keep port 0 and their attributes (they get the old
 * session-level c= if they relied on it); direction attributes, codecs and every other
 * attribute are kept (sdp-transform writes them in its canonical order, and drops only
 * obsolete lines it does not model such as `k=`). Input is checked by `parseSdp`; every
 * failure is an `SdpError`.
 */
import { isIP } from 'node:net';
import * as sdpTransform from 'sdp-transform';
import { SdpError } from './errors';
import { ParsedSdp, isZeroAddress, parseSdp } from './parse';

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

type Media = sdpTransform.MediaDescription;
type Connection = NonNullable<Media['connection']>;

/** Rewrites an SDP body (or an already parsed one); returns the new body's bytes. */
export function rewriteSdp(input: Buffer | string | ParsedSdp, options: RewriteOptions): Buffer {
  const parsed = typeof input === 'string' || Buffer.isBuffer(input) ? parseSdp(input) : input;
  const d: sdpTransform.SessionDescription = structuredClone(parsed.description);
  const replace = new Set(options.replace ?? []);
  const sessionConnection = d.connection;
  delete d.connection;
  rewriteSession(d, options, replace);
  d.media.forEach((m, i) => rewriteMedia(m, i, options, replace, sessionConnection));
  return Buffer.from(withOrigin(sdpTransform.write(d), d.origin), 'latin1');
}

/**
 * Writes the o= line ourselves: sdp-transform prints the session version as a JS number,
 * which would round 64-bit versions.
 */
function withOrigin(text: string, o: sdpTransform.SessionDescription['origin']): string {
  const line = `o=${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} IP${o.ipVer} ${o.address}`;
  return text.replace(/^o=.*$/m, () => line);
}

function rewriteSession(d: sdpTransform.SessionDescription, options: RewriteOptions, replace: Set<string>): void {
  if (replace.has('origin') || replace.has('origin-full')) {
    const address = options.originAddress ?? options.media.find((p) => p)?.address;
    if (address) d.origin = { ...d.origin, address, ipVer: isIP(address) === 6 ? 6 : 4 };
  }
  if (replace.has('sdp-version') && options.sdpVersion !== undefined) {
    d.origin = { ...d.origin, sessionVersion: versionOf(options.sdpVersion) };
  }
  if (replace.has('session-name')) d.name = Buffer.from(options.sessionName ?? '-', 'utf8').toString('latin1');
  if (options.ice !== 'keep') stripIce(d);
}

/** sdp-transform types the version as a number; text keeps 64-bit values exact (see `withOrigin`). */
function versionOf(v: number | bigint | string): number {
  const s = String(v);
  if (!/^\d+$/.test(s)) throw new SdpError('Error rewriting SDP', `bad SDP version "${s}"`);
  return s as unknown as number;
}

function rewriteMedia(
  m: Media,
  index: number,
  options: RewriteOptions,
  replace: Set<string>,
  sessionConnection: Connection | undefined,
): void {
  if (m.port === 0) {
    if (!m.connection && sessionConnection) m.connection = sessionConnection;
    return;
  }
  const plan = options.media[index];
  if (!plan) throw new SdpError('Error rewriting SDP', `no relay port for m= line ${index + 1}`);
  checkPlan(plan, index);
  const original = m.connection ?? sessionConnection;
  const keepZero = original !== undefined && isZeroAddress(original.ip) && !replace.has('zero-address');
  m.port = plan.port;
  m.connection = keepZero && original ? { ...original } : connectionOf(plan.address);
  rewriteRtcp(m, plan, options);
  if (options.ice !== 'keep') stripIce(m);
}

function checkPlan(plan: MediaPlan, index: number): void {
  const portOk = (p: number) => Number.isInteger(p) && p > 0 && p <= 65535;
  if (!portOk(plan.port) || (plan.rtcpPort !== undefined && !portOk(plan.rtcpPort))) {
    throw new SdpError('Error rewriting SDP', `bad relay port for m= line ${index + 1}`);
  }
  if (isIP(plan.address) === 0) {
    throw new SdpError('Error rewriting SDP', `bad relay address "${plan.address}" for m= line ${index + 1}`);
  }
}

function connectionOf(address: string): Connection {
  return { version: isIP(address) === 6 ? 6 : 4, ip: address };
}

function rewriteRtcp(m: Media, plan: MediaPlan, options: RewriteOptions): void {
  const mux = plan.rtcpMux ?? m.rtcpMux !== undefined;
  if (mux) m.rtcpMux = 'rtcp-mux';
  else delete m.rtcpMux;
  if (options.noRtcpAttribute) {
    delete m.rtcp;
    return;
  }
  const port = plan.rtcpPort ?? (mux ? plan.port : plan.port + 1);
  if (!options.fullRtcpAttribute) {
    m.rtcp = { port };
    return;
  }
  const c = connectionOf(plan.address);
  m.rtcp = { port, netType: 'IN', ipVer: c.version, address: c.ip };
}

/** Removes ICE attributes, including unmodelled `a=ice-…` lines. */
function stripIce(x: sdpTransform.SharedAttributes & Partial<Pick<Media, 'candidates' | 'endOfCandidates' | 'remoteCandidates'>> & { icelite?: string }): void {
  delete x.iceUfrag;
  delete x.icePwd;
  delete x.iceOptions;
  delete x.candidates;
  delete x.endOfCandidates;
  delete x.remoteCandidates;
  delete x.icelite;
  if (x.invalid) x.invalid = x.invalid.filter((a) => !/^ice-/i.test(a.value));
}
