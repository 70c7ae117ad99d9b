/**
 * ng message framing: `<cookie> <dictionary>` in, `<cookie> <reply dictionary>` out.
 *
 * The dictionary is bencode (first byte `d`) or JSON (first byte `{`); the reply uses the
 * format of the request, as rtpengine does. Invariants, also rtpengine's: a message with
 * no cookie (no space, or a space first) gets no reply at all; every other malformed
 * message gets an error reply whose `error-reason` is rtpengine's text for the case, so
 * controllers and their logs see the same thing from either relay.
 */
import { BDict, BEncodable, BValue, BencodeError, decode, encode, isDict } from './bencode';
import { NgRequestError } from './errors';
import { NgCommand, commandName } from './flags';
import { NgRequest, normaliseRequest } from './request';

export type NgFormat = 'bencode' | 'json';

/** rtpengine's `error-reason` texts for framing errors. */
export const FRAMING_ERRORS = {
  noPayload: 'Invalid data (no payload)',
  badBencode: 'Could not decode bencode dictionary',
  badJson: 'Failed to parse JSON document',
  jsonNotDict: 'Could not decode JSON dictionary',
  badFormat: 'Invalid NG data format',
} as const;

/** The outcome of parsing one message. */
export type ParsedMessage =
  | { kind: 'request'; cookie: string; format: NgFormat; request: NgRequest }
  | { kind: 'invalid'; cookie: string; format: NgFormat; reason: string; detail?: string; command?: NgCommand }
  | { kind: 'no-cookie' };

/** A reply dictionary; `result` is `ok`, `pong`, `error` or `load limit`. */
export interface NgReplyDict {
  result: string;
  'error-reason'?: string;
  warning?: string;
  sdp?: string | Buffer;
  [key: string]: BEncodable | undefined;
}

/** Deepest JSON nesting converted (bencode has its own limit). */
const MAX_JSON_DEPTH = 64;

/**
 * Splits `<cookie> <payload>`. The cookie is kept as latin1 text so that any bytes
 * round-trip into the reply unchanged. `undefined` when there is no cookie.
 */
export function splitCookie(message: Buffer): { cookie: string; payload: Buffer } | undefined {
  const space = message.indexOf(0x20);
  if (space <= 0) return undefined;
  return { cookie: message.toString('latin1', 0, space), payload: message.subarray(space + 1) };
}

/** Parses one complete message (a UDP datagram, or one frame cut from a TCP stream). */
export function parseMessage(message: Buffer): ParsedMessage {
  const split = splitCookie(message);
  if (!split) return { kind: 'no-cookie' };
  const { cookie, payload } = split;
  const format: NgFormat = payload[0] === 0x7b ? 'json' : 'bencode';
  const warnings: string[] = [];
  let dict: BDict;
  try {
    dict = decodePayload(payload, warnings);
  } catch (e) {
    return { kind: 'invalid', cookie, format, ...describe(e) };
  }
  try {
    return { kind: 'request', cookie, format, request: normaliseRequest(dict, warnings) };
  } catch (e) {
    return { kind: 'invalid', cookie, format, ...describe(e), command: commandOf(dict) };
  }
}

function describe(e: unknown): { reason: string; detail?: string } {
  if (e instanceof FramingError) return { reason: e.reason, detail: e.detail };
  if (e instanceof NgRequestError) return { reason: e.reason };
  throw e;
}

function commandOf(dict: BDict): NgCommand | undefined {
  const c = dict.command;
  return Buffer.isBuffer(c) ? commandName(c.toString('utf8')) : undefined;
}

/** A framing error: `reason` is rtpengine's text, `detail` says exactly what was wrong. */
class FramingError extends NgRequestError {
  constructor(
    reason: string,
    readonly detail?: string,
  ) {
    super(reason);
  }
}

/** Decodes the dictionary after the cookie; throws `NgRequestError` with rtpengine's reason. */
export function decodePayload(payload: Buffer, warnings: string[] = []): BDict {
  if (payload.length === 0) throw new FramingError(FRAMING_ERRORS.noPayload);
  if (payload[0] === 0x64) return decodeBencodeDict(payload, warnings);
  if (payload[0] === 0x7b) return decodeJsonDict(payload);
  throw new FramingError(FRAMING_ERRORS.badFormat);
}

function decodeBencodeDict(payload: Buffer, warnings: string[]): BDict {
  try {
    const v = decode(payload, { onDuplicateKey: (key) => warnings.push(`Duplicate key "${key}"`) });
    if (isDict(v)) return v;
  } catch (e) {
    if (e instanceof BencodeError) throw new FramingError(FRAMING_ERRORS.badBencode, e.message);
    throw e;
  }
  throw new FramingError(FRAMING_ERRORS.badBencode);
}

function decodeJsonDict(payload: Buffer): BDict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw new FramingError(FRAMING_ERRORS.badJson, (e as Error).message);
  }
  const v = fromJson(parsed, 0);
  if (!isDict(v)) throw new FramingError(FRAMING_ERRORS.jsonNotDict);
  return v;
}

/**
 * JSON → bencode values: strings become UTF-8 bytes, integers stay numbers, booleans
 * become 1/0, other numbers their text; nulls are dropped.
 */
function fromJson(v: unknown, depth: number): BValue | undefined {
  if (depth > MAX_JSON_DEPTH) throw new FramingError(FRAMING_ERRORS.jsonNotDict, 'nested too deeply');
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : Buffer.from(String(v));
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v)) return jsonList(v, depth + 1);
  return jsonDict(v as Record<string, unknown>, depth + 1);
}

function jsonList(v: unknown[], depth: number): BValue[] {
  const out: BValue[] = [];
  for (const item of v) {
    const b = fromJson(item, depth);
    if (b !== undefined) out.push(b);
  }
  return out;
}

function jsonDict(v: Record<string, unknown>, depth: number): BDict {
  const out: BDict = {};
  for (const key of Object.keys(v)) {
    const b = fromJson(v[key], depth);
    if (b === undefined) continue;
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: b, enumerable: true, writable: true, configurable: true });
    } else {
      out[key] = b;
    }
  }
  return out;
}

/** `result: error` with a reason, the only keys rtpengine sends in an error reply. */
export function errorReply(reason: string): NgReplyDict {
  return { result: 'error', 'error-reason': reason };
}

/** Encodes `<cookie> <reply>` in the request's format. */
export function encodeReply(cookie: string, reply: NgReplyDict, format: NgFormat = 'bencode'): Buffer {
  const head = Buffer.from(`${cookie} `, 'latin1');
  const body = format === 'json' ? Buffer.from(JSON.stringify(toJson(reply))) : encode(reply);
  return Buffer.concat([head, body]);
}

/** Byte strings (SDP bodies) go into JSON as UTF-8 text; undefined values are left out. */
function toJson(v: BEncodable | undefined): unknown {
  if (v === undefined || typeof v === 'string' || typeof v === 'number') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  if (Array.isArray(v)) return v.map(toJson);
  const out: Record<string, unknown> = {};
  const dict = v as { readonly [key: string]: BEncodable | undefined };
  for (const key of Object.keys(dict)) {
    if (dict[key] !== undefined && key !== '__proto__') out[key] = toJson(dict[key]);
  }
  return out;
}
