/**
 * How the front routes (RFC 3261 16.4–16.6 and 16.7): recognising its own Route entries (and,
 * as a backup, those of a primary whose alternatePath names it), the next hop of a request
 * (top Route, else Request-URI), its own Via and Record-Route (with alternatePath), the
 * branch (magic cookie, a hash of what identifies the request for loop detection, a counter),
 * and where a response goes (Via: received/rport/sent-by).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { ALTERNATE_PATH_NAME, alternatesOf, formatHostPorts, HostPort, sameHostPort, uriHostPort } from './alternate-path';
import { parseNameAddr, parseUri, parseVia, formatVia, socketHost, tagOf, SipUri } from './header-values';
import { header, headerValues, SipMessage, SipRequest, shiftHeaderValue, setHeaderValues } from './message';
import type { Destination, Source, Transport } from './transport';

export const BRANCH_PREFIX = 'z9hG4bKrh';

export interface OwnAddress {
  /** Host written in Via and Record-Route. */
  host: string;
  port: number;
  /** Other names of this front (the bound address, loopback aliases). */
  aliases: readonly string[];
  /** Backups written into alternatePath, HOST:PORT. */
  alternates: readonly string[];
}

export function isOwn(own: OwnAddress, hp: HostPort): boolean {
  return hp.port === own.port && (hp.host === own.host || own.aliases.includes(hp.host));
}

export interface PoppedRoutes {
  /** A primary this front stands in for: its Route entry named us in its alternatePath. */
  takeoverFrom?: HostPort;
}

/** Removes the Route entries that name this front (or a primary it backs up) from the top. */
export function popOwnRoutes(req: SipRequest, own: OwnAddress): PoppedRoutes {
  const out: PoppedRoutes = {};
  for (;;) {
    const top = headerValues(req, 'route')[0];
    if (top === undefined) return out;
    const uri = routeUri(top);
    if (!uri) return out;
    const hp = uriHostPort(uri);
    if (isOwn(own, hp)) {
      shiftHeaderValue(req, 'route');
      continue;
    }
    if (alternatesOf(uri.params).some((alt) => isOwn(own, alt))) {
      out.takeoverFrom = hp;
      shiftHeaderValue(req, 'route');
      continue;
    }
    return out;
  }
}

export function routeUri(value: string): SipUri | null {
  const na = parseNameAddr(value);
  return na ? parseUri(na.uri) : null;
}

export interface NextHop {
  uri: SipUri;
  /** Backups of that hop from its alternatePath, in order. */
  alternates: HostPort[];
}

/** Where a request goes next: its top Route, else its Request-URI (loose routing). */
export function nextHop(req: SipRequest): NextHop | null {
  const top = headerValues(req, 'route')[0];
  const uri = top !== undefined ? routeUri(top) : parseUri(req.uri);
  if (!uri) return null;
  return { uri, alternates: alternatesOf(uri.params) };
}

export function transportOf(uri: SipUri): Transport {
  return uri.params.get('transport')?.toLowerCase() === 'tcp' ? 'tcp' : 'udp';
}

/** The socket address of a URI's host (literal addresses as they are; names by the resolver). */
export async function resolve(host: string, port: number, transport: Transport): Promise<Destination> {
  const bare = socketHost(host);
  if (net.isIP(bare)) return { transport, address: bare, port };
  const found = await dns.lookup(bare);
  return { transport, address: found.address, port };
}

/** Our Via for a request leaving by `transport`. */
export function ownVia(own: OwnAddress, transport: Transport, branch: string): string {
  const params = new Map<string, string | null>([['branch', branch]]);
  if (own.alternates.length > 0) params.set(ALTERNATE_PATH_NAME, `"${formatHostPorts(own.alternates)}"`);
  return formatVia({ protocol: 'SIP/2.0', transport: transport.toUpperCase(), host: own.host, port: own.port, params });
}

/** Our Record-Route entry: loose routing, the transport when not UDP, our backups. */
export function ownRecordRoute(own: OwnAddress, transport: Transport): string {
  const tp = transport === 'tcp' ? ';transport=tcp' : '';
  const alt = own.alternates.length > 0 ? `;${ALTERNATE_PATH_NAME}=${formatHostPorts(own.alternates)}` : '';
  return `<sip:${own.host}:${own.port}${tp};lr${alt}>`;
}

/**
 * Replaces the Record-Route entries that name `primary` with ours (seed 002, claim 17: the
 * backup rewrites the routing headers so the dialog's later requests come through it).
 */
export function replaceRecordRoute(msg: SipMessage, primary: HostPort, own: OwnAddress): boolean {
  const values = headerValues(msg, 'record-route');
  let changed = false;
  const next = values.map((v) => {
    const uri = routeUri(v);
    if (!uri || !sameHostPort(uriHostPort(uri), primary)) return v;
    changed = true;
    return ownRecordRoute(own, transportOf(uri));
  });
  if (changed) setHeaderValues(msg, 'record-route', 'Record-Route', next);
  return changed;
}

/**
 * Two 32-bit multiplicative hashes of `text` in base 36: loop detection and branch derivation
 * need a stable fingerprint, not a cryptographic one (crypto hashes cost more than the rest of a
 * request's routing).
 */
export function fingerprint(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return (h1 >>> 0).toString(36) + (h2 >>> 0).toString(36);
}

/** What identifies a request for loop detection (RFC 3261 16.6 step 8). */
export function loopHash(req: SipRequest): string {
  const cseq = (header(req, 'cseq') ?? '').split(/\s+/)[0];
  const parts = [req.uri, tagOf(header(req, 'from') ?? '') ?? '', tagOf(header(req, 'to') ?? '') ?? '', header(req, 'call-id') ?? '', cseq, headerValues(req, 'route')[0] ?? ''];
  return fingerprint(parts.join('\n'));
}

/** True when the request went through us before in the same shape (a loop, not a spiral). */
export function isLoop(req: SipRequest, own: OwnAddress, hash: string): boolean {
  const vias = headerValues(req, 'via');
  const marker = `${BRANCH_PREFIX}${hash}.`;
  for (const value of vias.slice(1)) {
    if (!value.includes(marker)) continue;
    const via = parseVia(value);
    if (!via || !isOwn(own, { host: via.host, port: via.port ?? 5060 })) continue;
    const branch = via.params.get('branch') ?? '';
    if (branch.startsWith(`${BRANCH_PREFIX}${hash}.`)) return true;
  }
  return false;
}

let branchCounter = 0;

export function newBranch(hash: string): string {
  branchCounter = (branchCounter + 1) % 0x7fffffff;
  return `${BRANCH_PREFIX}${hash}.${process.pid.toString(36)}${branchCounter.toString(36)}`;
}

/** The branch of an ACK forwarded statelessly: the same for every retransmission. */
export function statelessBranch(incomingBranch: string): string {
  return `${BRANCH_PREFIX}s${fingerprint(incomingBranch)}`;
}

/**
 * Stamps the top Via of a received request with `received` (the packet's address differs from
 * sent-by) and the `rport` value asked for (RFC 3581); returns where responses go.
 */
export function stampVia(req: SipRequest, source: Source): Source {
  const values = headerValues(req, 'via');
  const via = parseVia(values[0] ?? '');
  if (!via) return source;
  let changed = false;
  if (via.host !== source.address && socketHost(via.host) !== source.address) {
    via.params.set('received', source.address);
    changed = true;
  }
  if (via.params.has('rport') && via.params.get('rport') === null) {
    via.params.set('rport', String(source.port));
    changed = true;
  }
  if (changed) setHeaderValues(req, 'via', 'Via', [formatVia(via), ...values.slice(1)]);
  if (source.transport === 'tcp') return source;
  const rport = via.params.get('rport');
  const port = rport ? Number(rport) : (via.port ?? 5060);
  return { transport: 'udp', address: source.address, port };
}

/** Where a response goes when no transaction knows it: the (new) top Via. */
export function viaTarget(viaValue: string): Destination | null {
  const via = parseVia(viaValue);
  if (!via) return null;
  const address = via.params.get('received') ?? socketHost(via.host);
  if (!address || !net.isIP(address)) return null;
  const rport = via.params.get('rport');
  const port = rport ? Number(rport) : (via.port ?? 5060);
  return { transport: via.transport === 'TCP' ? 'tcp' : 'udp', address, port };
}
