/**
 * A strict SIP message parser (RFC 3261 7 and 25): CRLF line ends, folded header lines joined,
 * compact header names expanded, UTF-8 headers, SIP/2.0 only, the mandatory headers of a
 * request present and sane (CSeq method = request method, Max-Forwards a small integer), one
 * Content-Length that fits the datagram (UDP: optional, the rest of the datagram is the body
 * when absent; TCP: required, the framer cut the message by it).
 *
 * It never throws anything but SipParseError. A request whose routing headers were read before
 * the fault travels inside the error (`partial`) so the server can answer 400/505 instead of
 * dropping it silently.
 */
import { isAscii } from 'node:buffer';
import { SipParseError } from './errors';
import { headerKey, SipHeader, SipMessage, SipRequest } from './message';

/** Largest message accepted (a UDP datagram's payload; the TCP framer applies the same bound). */
export const MAX_MESSAGE_BYTES = 65507;
/** Longest header section (start line and headers). */
export const MAX_HEAD_BYTES = 16384;
const MAX_HEADERS = 128;

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const REQUEST_LINE = /^([A-Za-z0-9.!%*_+`'~-]+) ([^\s]+) SIP\/(\d+\.\d+)$/;
const STATUS_LINE = /^SIP\/(\d+\.\d+) ([1-6]\d\d) ([^\r\n]*)$/;
/** Control characters other than HT, and a CR or LF that is not part of a CRLF, anywhere in the head. */
const FORBIDDEN_IN_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const CSEQ = /^(\d{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Where the header section ends: the offset of the empty line's CRLF CRLF, or -1. */
export function headEnd(buf: Buffer, from = 0): number {
  return buf.indexOf('\r\n\r\n', from, 'latin1');
}

export function parseMessage(buf: Buffer, transport: 'udp' | 'tcp' = 'udp'): SipMessage {
  if (buf.length > MAX_MESSAGE_BYTES) throw new SipParseError(413, 'Message Too Large');
  const end = headEnd(buf);
  const headBytes = end < 0 ? buf : buf.subarray(0, end);
  if (headBytes.length > MAX_HEAD_BYTES) throw new SipParseError(413, 'Header Section Too Large');
  let head: string;
  let fault: SipParseError | undefined;
  if (isAscii(headBytes)) head = headBytes.toString('latin1');
  else {
    try {
      head = utf8.decode(headBytes);
    } catch {
      head = headBytes.toString('latin1');
      fault = new SipParseError(400, 'Invalid UTF-8 in Headers');
    }
  }
  if (FORBIDDEN_IN_HEAD.test(head)) fault ??= new SipParseError(400, 'Control Character in Headers');
  const lines = unfold(head.split('\r\n'));
  const startLine = lines.shift() ?? '';
  const headers: SipHeader[] = [];
  for (const line of lines) {
    if (headers.length >= MAX_HEADERS) {
      fault ??= new SipParseError(413, 'Too Many Headers');
      break;
    }
    const parsed = headerLine(line);
    if (typeof parsed === 'string') fault ??= new SipParseError(400, parsed);
    else headers.push(parsed);
  }
  if (end < 0) fault ??= new SipParseError(400, 'Missing Empty Line After Headers');
  const body = end < 0 ? Buffer.alloc(0) : buf.subarray(end + 4);
  const msg = startOf(startLine, headers, body);
  if (msg.kind === 'request') fault ??= checkRequest(msg);
  else fault ??= checkResponse(headers);
  const framed = fault ?? frame(msg, transport);
  if (framed instanceof SipParseError) throw withPartial(framed, msg);
  return framed;
}

function unfold(lines: string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && out.length > 1) out[out.length - 1] += ` ${line.trim()}`;
    else out.push(line);
  }
  return out;
}

function headerLine(line: string): SipHeader | string {
  const colon = line.indexOf(':');
  if (colon <= 0) return 'Malformed Header Line';
  const name = line.slice(0, colon).trimEnd();
  if (!TOKEN.test(name)) return 'Malformed Header Name';
  return { name, key: headerKey(name), value: line.slice(colon + 1).trim() };
}

function startOf(line: string, headers: SipHeader[], body: Buffer): SipMessage {
  const req = REQUEST_LINE.exec(line);
  if (req) {
    const msg: SipRequest = { kind: 'request', method: req[1], uri: req[2], headers, body };
    if (req[3] !== '2.0') throw withPartial(new SipParseError(505, 'Version Not Supported'), msg);
    return msg;
  }
  const status = STATUS_LINE.exec(line);
  if (status && status[1] === '2.0') return { kind: 'response', status: Number(status[2]), reason: status[3], headers, body };
  if (/^SIP\/\d+\.\d+ /.test(line)) throw new SipParseError(505, 'Version Not Supported');
  throw new SipParseError(400, 'Malformed Start Line');
}

function single(headers: SipHeader[], key: string): string | undefined | null {
  let found: string | undefined;
  for (const h of headers) {
    if (h.key !== key) continue;
    if (found !== undefined && found !== h.value) return null;
    found = h.value;
  }
  return found;
}

function checkRequest(req: SipRequest): SipParseError | undefined {
  if (req.uri.length > 2048) return new SipParseError(414, 'Request-URI Too Long');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(req.uri)) return new SipParseError(400, 'Malformed Request-URI');
  for (const key of ['via', 'from', 'to', 'call-id', 'cseq']) {
    const v = single(req.headers, key);
    if (key === 'via' ? !req.headers.some((h) => h.key === 'via' && h.value !== '') : v === undefined || v === '') {
      return new SipParseError(400, `Missing ${key} Header`);
    }
    if (v === null && key !== 'via') return new SipParseError(400, `Conflicting ${key} Headers`);
  }
  const cseq = CSEQ.exec(single(req.headers, 'cseq') as string);
  if (!cseq || Number(cseq[1]) > 0xffffffff) return new SipParseError(400, 'Malformed CSeq');
  if (cseq[2] !== req.method && !(req.method === 'ACK' && cseq[2] === 'INVITE')) return new SipParseError(400, 'CSeq Method Mismatch');
  const maxForwards = single(req.headers, 'max-forwards');
  if (maxForwards === null || (maxForwards !== undefined && !/^\d{1,3}$/.test(maxForwards))) return new SipParseError(400, 'Malformed Max-Forwards');
  if (!/;\s*tag=/i.test(single(req.headers, 'from') as string)) return new SipParseError(400, 'Missing From Tag');
  return undefined;
}

function checkResponse(headers: SipHeader[]): SipParseError | undefined {
  for (const key of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (!headers.some((h) => h.key === key)) return new SipParseError(400, `Missing ${key} Header`);
  }
  if (!CSEQ.test(single(headers, 'cseq') ?? '')) return new SipParseError(400, 'Malformed CSeq');
  return undefined;
}

/** Applies Content-Length: required over TCP, must not exceed what arrived. */
function frame(msg: SipMessage, transport: 'udp' | 'tcp'): SipMessage | SipParseError {
  const declared = single(msg.headers, 'content-length');
  if (declared === null) return new SipParseError(400, 'Conflicting Content-Length');
  if (declared === undefined) {
    return transport === 'tcp' ? new SipParseError(400, 'Missing Content-Length') : msg;
  }
  if (!/^\d{1,10}$/.test(declared)) return new SipParseError(400, 'Malformed Content-Length');
  const length = Number(declared);
  if (length > msg.body.length) return new SipParseError(400, 'Content-Length Exceeds Body');
  // RFC 3261 18.3: bytes past Content-Length in a datagram are discarded
  if (length < msg.body.length) msg.body = msg.body.subarray(0, length);
  return msg;
}

/** Attaches the request when it carries what a response needs (RFC 3261 8.2.6.2). */
function withPartial(error: SipParseError, msg: SipMessage): SipParseError {
  if (error.partial || msg.kind !== 'request') return error;
  const present = (key: string): boolean => msg.headers.some((h) => h.key === key && h.value !== '');
  if (!['via', 'from', 'to', 'call-id', 'cseq'].every(present)) return error;
  return new SipParseError(error.status, error.reason, msg);
}
