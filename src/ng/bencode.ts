/**
 * Bencode, the ng protocol's wire format: a strict decoder and a fast encoder.
 *
 * Invariants:
 * - `decode` accepts exactly one value covering the whole input, and otherwise throws a
 *   `BencodeError` (never anything else) carrying the byte offset of the problem:
 *   trailing bytes, leading zeros, `-0`, lengths beyond the input, non-string or
 *   duplicate dict keys and nesting deeper than `MAX_DEPTH` are all rejected (duplicate
 *   keys may instead be reported to a callback, the later value winning).
 * - Byte strings decode to `Buffer`s that are views into the input (no copy), because
 *   SDP bodies may hold any bytes; dict keys decode to JS strings (UTF-8, fatal on bad
 *   sequences). Use `asText` to read a value as text.
 * - Dict keys are not required to be sorted: rtpengine and its modules send and expect
 *   insertion order. `encode` writes keys in the object's own order, skips `undefined`
 *   values, and takes JS strings (written as UTF-8) as well as bytes.
 * - Integers are JS safe integers; anything larger is rejected rather than rounded.
 */
import { BencodeError } from './errors';

export { BencodeError } from './errors';

/** A decoded bencode value. */
export type BValue = Buffer | number | BValue[] | BDict;

/** A decoded bencode dictionary. */
export interface BDict {
  [key: string]: BValue;
}

/** What `encode` accepts: decoded values plus JS strings, byte arrays and optional keys. */
export type BEncodable =
  | string
  | number
  | Uint8Array
  | readonly BEncodable[]
  | { readonly [key: string]: BEncodable | undefined };

/** Deepest container nesting accepted by `decode` and `encode`. */
export const MAX_DEPTH = 64;

/**
 * The input ended inside a value: more bytes might make it valid. `needed` is the least
 * total input length (from the start of the buffer) that could complete it.
 */
export class BencodeTruncatedError extends BencodeError {
  readonly needed: number;

  constructor(reason: string, offset: number, needed: number) {
    super(reason, offset);
    this.needed = needed;
  }
}

const CH_D = 0x64; // 'd'
const CH_E = 0x65; // 'e'
const CH_I = 0x69; // 'i'
const CH_L = 0x6c; // 'l'
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_0 = 0x30;
const CH_9 = 0x39;
/** Digits that always fit in a safe integer (2^53 has 16 digits). */
const SAFE_DIGITS = 15;

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });
/** Keys up to this length are decoded by a JS loop. */
const SHORT_KEY = 32;

/** Options of `decode` and `decodePrefix`. */
export interface DecodeOptions {
  /**
   * Called for a key seen twice in one dict; the later value then wins (rtpengine
   * processes every entry in order, so controllers' repeated keys work there). Without
   * it a duplicate key is a `BencodeError`.
   */
  onDuplicateKey?: (key: string, offset: number) => void;
}

/** Decodes exactly one bencode value spanning all of `buf`. */
export function decode(buf: Uint8Array, options: DecodeOptions = {}): BValue {
  const { value, end } = decodePrefix(buf, 0, options);
  if (end !== buf.length) throw new BencodeError('trailing data after value', end);
  return value;
}

/**
 * Decodes one value starting at `offset` and returns it with the offset just past it,
 * ignoring whatever follows (for streams). Throws `BencodeTruncatedError` if the input
 * ends inside the value.
 */
export function decodePrefix(
  buf: Uint8Array,
  offset = 0,
  options: DecodeOptions = {},
): { value: BValue; end: number } {
  const d = new Decoder(toBuffer(buf), offset, options.onDuplicateKey);
  const value = d.value(0);
  return { value, end: d.pos };
}

function toBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

class Decoder {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly onDuplicateKey: DecodeOptions['onDuplicateKey'],
  ) {}

  value(depth: number): BValue {
    const c = this.peek('value');
    if (c >= CH_0 && c <= CH_9) return this.bytes();
    if (c === CH_I) return this.integer();
    if (c === CH_L) return this.list(depth + 1);
    if (c === CH_D) return this.dict(depth + 1);
    throw new BencodeError(`unexpected byte 0x${hex(c)}`, this.pos);
  }

  private peek(what: string): number {
    if (this.pos >= this.buf.length) {
      throw new BencodeTruncatedError(`input ends inside ${what}`, this.pos, this.pos + 1);
    }
    return this.buf[this.pos];
  }

  private integer(): number {
    const start = this.pos++;
    const negative = this.peek('integer') === CH_MINUS;
    if (negative) this.pos++;
    const digitsAt = this.pos;
    const n = this.digits(CH_E, 'integer');
    if (n === 0 && negative) throw new BencodeError('negative zero', start);
    if (this.buf[digitsAt] === CH_0 && this.pos - digitsAt > 2) {
      throw new BencodeError('leading zero in integer', digitsAt);
    }
    return negative ? -n : n;
  }

  /** Reads decimal digits up to `terminator` (consumed); returns their value. */
  private digits(terminator: number, what: string): number {
    const start = this.pos;
    let n = 0;
    for (;;) {
      const c = this.peek(what);
      if (c === terminator) break;
      if (c < CH_0 || c > CH_9) throw new BencodeError(`bad character in ${what}`, this.pos);
      n = n * 10 + (c - CH_0);
      this.pos++;
    }
    const count = this.pos - start;
    if (count === 0) throw new BencodeError(`empty ${what}`, start);
    if (count > SAFE_DIGITS && !Number.isSafeInteger(n)) {
      throw new BencodeError(`${what} out of range`, start);
    }
    this.pos++;
    return n;
  }

  private bytes(): Buffer {
    const len = this.length();
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Reads a string's `<length>:` header and checks the bytes are there. */
  private length(): number {
    const start = this.pos;
    const len = this.digits(CH_COLON, 'string length');
    if (this.buf[start] === CH_0 && this.pos - start > 2) {
      throw new BencodeError('leading zero in string length', start);
    }
    const end = this.pos + len;
    if (end > this.buf.length) {
      throw new BencodeTruncatedError('string runs past end of input', start, end);
    }
    return len;
  }

  private list(depth: number): BValue[] {
    this.checkDepth(depth);
    this.pos++;
    const out: BValue[] = [];
    while (this.peek('list') !== CH_E) out.push(this.value(depth));
    this.pos++;
    return out;
  }

  private dict(depth: number): BDict {
    this.checkDepth(depth);
    this.pos++;
    const out: BDict = {};
    while (this.peek('dict') !== CH_E) {
      const at = this.pos;
      const key = this.key();
      if (Object.prototype.hasOwnProperty.call(out, key)) this.duplicate(key, at);
      setOwn(out, key, this.value(depth));
    }
    this.pos++;
    return out;
  }

  private duplicate(key: string, at: number): void {
    if (!this.onDuplicateKey) throw new BencodeError(`duplicate dict key "${key}"`, at);
    this.onDuplicateKey(key, at);
  }

  private key(): string {
    const c = this.buf[this.pos];
    if (c < CH_0 || c > CH_9) throw new BencodeError('dict key is not a string', this.pos);
    const at = this.pos;
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    return keyText(this.buf, start, this.pos, at);
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_DEPTH) throw new BencodeError(`nesting deeper than ${MAX_DEPTH}`, this.pos);
  }
}

/** Keys are short ASCII in practice: build those in JS, fall back to a strict UTF-8 decode. */
function keyText(buf: Buffer, start: number, end: number, at: number): string {
  if (end - start > SHORT_KEY) return utf8Key(buf.subarray(start, end), at);
  let s = '';
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c >= 0x80) return utf8Key(buf.subarray(start, end), at);
    s += String.fromCharCode(c);
  }
  return s;
}

function utf8Key(raw: Buffer, at: number): string {
  try {
    return utf8Fatal.decode(raw);
  } catch {
    throw new BencodeError('dict key is not valid UTF-8', at);
  }
}

/** Assigns without ever touching the prototype (a key may be "__proto__"). */
function setOwn(obj: BDict, key: string, value: BValue): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

function hex(c: number): string {
  return c.toString(16).padStart(2, '0');
}

/** Encodes a value; throws `BencodeError` for values bencode cannot carry. */
export function encode(value: BEncodable): Buffer {
  const enc = new Encoder();
  enc.value(value, 0);
  return enc.finish();
}

type EncodableDict = { readonly [key: string]: BEncodable | undefined };

/** Scratch space shared by all encodes (they are synchronous); shrunk after big ones. */
const SCRATCH_SIZE = 16 * 1024;
let scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
/** Strings shorter than this are copied by a JS loop, faster than a native write. */
const SHORT_STRING = 48;

/** Single pass into the scratch buffer, then one copy out. */
class Encoder {
  private out = scratch;
  private pos = 0;

  finish(): Buffer {
    const result = Buffer.allocUnsafe(this.pos);
    this.out.copy(result, 0, 0, this.pos);
    scratch = this.out.length > 4 * SCRATCH_SIZE ? Buffer.allocUnsafe(SCRATCH_SIZE) : this.out;
    return result;
  }

  value(v: BEncodable, depth: number): void {
    if (typeof v === 'string') return this.text(v);
    if (typeof v === 'number') return this.integer(v);
    if (v instanceof Uint8Array) return this.bytes(v);
    if (depth >= MAX_DEPTH) throw new BencodeError(`nesting deeper than ${MAX_DEPTH}`, this.pos);
    if (Array.isArray(v)) return this.list(v, depth + 1);
    if (typeof v === 'object' && v !== null) return this.dict(v as EncodableDict, depth + 1);
    throw new BencodeError(`cannot encode a value of type ${v === null ? 'null' : typeof v}`, this.pos);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + n));
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }

  /** Writes a non-negative safe integer in decimal (room must be reserved). */
  private decimal(n: number): void {
    const out = this.out;
    if (n < 10) {
      out[this.pos++] = CH_0 + n;
      return;
    }
    if (n > 0x7fffffff) {
      this.pos += out.write(String(n), this.pos, 'latin1');
      return;
    }
    // Digits written in place, last first: a Buffer.write per number costs more than the rest.
    let digits = 1;
    for (let x = n; x >= 10; x = (x / 10) | 0) digits++;
    let pos = this.pos + digits;
    this.pos = pos;
    let x = n;
    while (x >= 10) {
      const q = (x / 10) | 0;
      out[--pos] = CH_0 + (x - q * 10);
      x = q;
    }
    out[--pos] = CH_0 + x;
  }

  private integer(n: number): void {
    if (!Number.isSafeInteger(n)) throw new BencodeError(`cannot encode non-integer number ${n}`, this.pos);
    this.reserve(20);
    this.out[this.pos++] = CH_I;
    if (n < 0) this.out[this.pos++] = CH_MINUS;
    this.decimal(Math.abs(n));
    this.out[this.pos++] = CH_E;
  }

  private text(s: string): void {
    if (s.length < SHORT_STRING && isAscii(s)) return this.shortAscii(s);
    const len = Buffer.byteLength(s);
    this.reserve(len + 17);
    this.decimal(len);
    this.out[this.pos++] = CH_COLON;
    this.pos += this.out.write(s, this.pos, 'utf8');
  }

  private shortAscii(s: string): void {
    this.reserve(s.length + 3);
    const out = this.out;
    this.decimal(s.length);
    let pos = this.pos;
    out[pos++] = CH_COLON;
    for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
    this.pos = pos;
  }

  private bytes(b: Uint8Array): void {
    this.reserve(b.length + 17);
    this.decimal(b.length);
    this.out[this.pos++] = CH_COLON;
    this.out.set(b, this.pos);
    this.pos += b.length;
  }

  private list(v: readonly BEncodable[], depth: number): void {
    this.reserve(1);
    this.out[this.pos++] = CH_L;
    for (const item of v) this.value(item, depth);
    this.reserve(1);
    this.out[this.pos++] = CH_E;
  }

  private dict(v: EncodableDict, depth: number): void {
    this.reserve(1);
    this.out[this.pos++] = CH_D;
    const keys = Object.keys(v);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const item = v[key];
      if (item === undefined) continue;
      this.text(key);
      this.value(item, depth);
    }
    this.reserve(1);
    this.out[this.pos++] = CH_E;
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** True for a decoded dictionary. */
export function isDict(v: BValue | undefined): v is BDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** True for a decoded list. */
export function isList(v: BValue | undefined): v is BValue[] {
  return Array.isArray(v);
}

/** True for a decoded byte string. */
export function isBytes(v: BValue | undefined): v is Buffer {
  return Buffer.isBuffer(v);
}

/** A byte string read as UTF-8 text; `undefined` for any other type. */
export function asText(v: BValue | undefined): string | undefined {
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
}

/** Converts a decoded value to plain JSON-friendly data (byte strings as UTF-8 text). */
export function toPlain(v: BValue): PlainValue {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map(toPlain);
  const out: { [key: string]: PlainValue } = {};
  for (const key of Object.keys(v)) {
    const item = toPlain(v[key]);
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
    } else {
      out[key] = item;
    }
  }
  return out;
}

/** The shape `toPlain` returns: text instead of bytes. */
export type PlainValue = string | number | PlainValue[] | { [key: string]: PlainValue };
