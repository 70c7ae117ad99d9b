/**
 * SIP messages as the front handles them: a start line, an ordered list of header fields and a
 * body. A header keeps the name it arrived with (a proxy forwards what it got) beside its
 * canonical key (lower-case long form: `v` → `via`), by which it is looked up. Header values
 * that are comma lists (Via, Route, Record-Route, Contact) are split on demand by `headerValues`.
 *
 * Invariant: `serialize` always writes one Content-Length equal to the body's length, whatever
 * the headers said, so a message whose body was rewritten is framed right.
 */

export interface SipHeader {
  /** As received or as written by the front. */
  name: string;
  /** Lower-case long form, for look-ups. */
  key: string;
  value: string;
}

interface SipMessageBase {
  headers: SipHeader[];
  body: Buffer;
}

export interface SipRequest extends SipMessageBase {
  kind: 'request';
  method: string;
  uri: string;
}

export interface SipResponse extends SipMessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** RFC 3261 7.3.3 compact forms (and RFC 3515/3891/4028 ones seen in the field). */
const compactForms: Record<string, string> = {
  v: 'via',
  f: 'from',
  t: 'to',
  i: 'call-id',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
  k: 'supported',
  s: 'subject',
  e: 'content-encoding',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  o: 'event',
  u: 'allow-events',
};

const keyCache = new Map<string, string>();

export function headerKey(name: string): string {
  let key = keyCache.get(name);
  if (key !== undefined) return key;
  const lower = name.toLowerCase();
  key = compactForms[lower] ?? lower;
  // names repeat endlessly; a bounded cache keeps odd ones from growing it
  if (keyCache.size < 1024) keyCache.set(name, key);
  return key;
}

export function header(msg: SipMessage, key: string): string | undefined {
  for (const h of msg.headers) if (h.key === key) return h.value;
  return undefined;
}

/** Every value of a header, comma lists split, in order. */
export function headerValues(msg: SipMessage, key: string): string[] {
  const out: string[] = [];
  for (const h of msg.headers) if (h.key === key) out.push(...splitList(h.value));
  return out;
}

export function hasHeader(msg: SipMessage, key: string): boolean {
  return msg.headers.some((h) => h.key === key);
}

export function removeHeaders(msg: SipMessage, key: string): void {
  msg.headers = msg.headers.filter((h) => h.key !== key);
}

/** Replaces every field of `key` with one field per value (none when `values` is empty). */
export function setHeaderValues(msg: SipMessage, key: string, name: string, values: readonly string[]): void {
  const at = msg.headers.findIndex((h) => h.key === key);
  const fields = values.map((value) => ({ name, key, value }));
  removeHeaders(msg, key);
  msg.headers.splice(at < 0 ? msg.headers.length : at, 0, ...fields);
}

export function setHeader(msg: SipMessage, key: string, name: string, value: string): void {
  setHeaderValues(msg, key, name, [value]);
}

/** Adds a field above every other field (Via, Record-Route). */
export function prependHeader(msg: SipMessage, key: string, name: string, value: string): void {
  const at = msg.headers.findIndex((h) => h.key === key);
  msg.headers.splice(at < 0 ? 0 : at, 0, { name, key, value });
}

/** Removes the first value of a (possibly comma-listed) header; returns it. */
export function shiftHeaderValue(msg: SipMessage, key: string): string | undefined {
  const at = msg.headers.findIndex((h) => h.key === key);
  if (at < 0) return undefined;
  const [first, ...rest] = splitList(msg.headers[at].value);
  if (rest.length === 0) msg.headers.splice(at, 1);
  else msg.headers[at] = { ...msg.headers[at], value: rest.join(', ') };
  return first;
}

/**
 * Splits a header value on the commas that separate list elements: not those inside a quoted
 * string or inside <…> (a URI may carry commas in its parameters or headers).
 */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x3c) angle = true;
    else if (c === 0x3e) angle = false;
    else if (c === 0x2c && !angle) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter((v) => v.length > 0);
}

export function serialize(msg: SipMessage): Buffer {
  const start = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0` : `SIP/2.0 ${msg.status} ${msg.reason}`;
  let head = `${start}\r\n`;
  for (const h of msg.headers) {
    if (h.key !== 'content-length') head += `${h.name}: ${h.value}\r\n`;
  }
  head += `Content-Length: ${msg.body.length}\r\n\r\n`;
  const bytes = Buffer.from(head, 'utf8');
  return msg.body.length === 0 ? bytes : Buffer.concat([bytes, msg.body]);
}

/** Headers a response copies from its request (RFC 3261 8.2.6.2). */
const copiedToResponse = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/** A response to `req` built by the front itself (100 Trying, 4xx for bad input…). */
export function responseTo(req: SipRequest, status: number, reason: string, toTag?: string): SipResponse {
  const headers: SipHeader[] = [];
  for (const h of req.headers) {
    if (!copiedToResponse.has(h.key)) continue;
    const addTag = h.key === 'to' && toTag !== undefined && status > 100 && !/;\s*tag=/i.test(h.value);
    headers.push(addTag ? { ...h, value: `${h.value};tag=${toTag}` } : { ...h });
  }
  return { kind: 'response', status, reason, headers, body: Buffer.alloc(0) };
}

export const reasonPhrases: Record<number, string> = {
  100: 'Trying',
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'Version Not Supported',
};
