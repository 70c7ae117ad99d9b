/**
 * Parser of the `rtpp-flags` string: Kamailio (and other controllers) may hand rtpengine
 * its flags unparsed, as one space-separated string such as
 * `replace-origin via-branch=auto-next ICE=remove codec=[strip=[PCMU] offer=[PCMA]]`.
 *
 * Grammar (rtpengine's): tokens separated by spaces; a token is a bare flag or
 * `key=value`; a value starting with `[` is a list up to the matching `]` whose items are
 * tokens again, and a list whose first item is `k=v` is a dictionary. Bare transport words
 * (`RTP`, `SRTP`, `AVPF`, `DTLS`, `RTP/SAVPF`…) combine into one `transport-protocol`.
 * The parser only structures the string; `request.ts` gives the entries their meaning.
 * Invariant: any input yields entries or an `NgRequestError`, never anything else.
 */
import { NgRequestError } from './errors';

/** A value in an rtpp-flags string. */
export type RtppValue = string | RtppValue[] | RtppDict;

/** A `[k=v …]` dictionary in an rtpp-flags string. */
export interface RtppDict {
  [key: string]: RtppValue;
}

/** One top-level item of an rtpp-flags string. */
export type RtppEntry = { kind: 'flag'; name: string } | { kind: 'option'; key: string; value: RtppValue };

/** Longest rtpp-flags string accepted (a UDP datagram could not carry much more). */
const MAX_LENGTH = 65536;
/** Deepest bracket nesting accepted. */
const MAX_DEPTH = 16;

/** Parses an rtpp-flags string; throws `NgRequestError` on unbalanced brackets. */
export function parseRtppFlags(input: string): RtppEntry[] {
  if (input.length > MAX_LENGTH) throw new NgRequestError('rtpp-flags string too long');
  const p = new Parser(tokenize(input));
  const entries: RtppEntry[] = [];
  const transport = new TransportWords();
  for (let item = p.item(0); item !== undefined; item = p.item(0)) {
    if (typeof item === 'string') {
      if (!transport.take(item)) entries.push({ kind: 'flag', name: item });
    } else if (isPair(item)) {
      entries.push({ kind: 'option', key: item.key, value: item.value });
    } else {
      throw new NgRequestError('Malformed rtpp-flags: list without a key');
    }
  }
  const protocol = transport.protocol();
  if (protocol) entries.push({ kind: 'option', key: 'transport-protocol', value: protocol });
  return entries;
}

const OPEN = '[';
const CLOSE = ']';

/** Words and brackets: `a=[b c]` → `a=`, `[`, `b`, `c`, `]`. */
function tokenize(s: string): string[] {
  return s.split(/([[\] ])/).filter((t) => t !== '' && t !== ' ');
}

interface Pair {
  key: string;
  value: RtppValue;
}

function isPair(v: RtppValue | Pair): v is Pair {
  return typeof v === 'object' && !Array.isArray(v) && v !== null && pairs.has(v);
}

/** Marks the objects made by `Parser.item` as pairs (dictionaries are plain objects too). */
const pairs = new WeakSet<object>();

class Parser {
  private pos = 0;

  constructor(private readonly tokens: string[]) {}

  /** The next item at this level: a word, a `key=value` pair or a bracketed list. */
  item(depth: number): RtppValue | Pair | undefined {
    const t = this.tokens[this.pos++];
    if (t === undefined || t === CLOSE) {
      if (t === CLOSE && depth === 0) throw new NgRequestError('Unbalanced "]" in rtpp-flags');
      return undefined;
    }
    if (t === OPEN) return this.bracket(depth + 1);
    const eq = t.indexOf('=');
    if (eq <= 0) return t;
    const key = t.slice(0, eq);
    const rest = t.slice(eq + 1);
    const value = rest === '' && this.tokens[this.pos] === OPEN ? (this.pos++, this.bracket(depth + 1)) : rest;
    const pair = { key, value };
    pairs.add(pair);
    return pair;
  }

  /** Items up to the matching `]`: a dictionary if the first is `k=v`, else a list. */
  private bracket(depth: number): RtppValue[] | RtppDict {
    if (depth > MAX_DEPTH) throw new NgRequestError('rtpp-flags nested too deeply');
    const items: Array<RtppValue | Pair> = [];
    for (;;) {
      if (this.pos >= this.tokens.length) throw new NgRequestError('Unbalanced "[" in rtpp-flags');
      const item = this.item(depth);
      if (item === undefined) break;
      items.push(item);
    }
    return items.length > 0 && isPair(items[0]) ? toDict(items) : items.map(pairText);
  }
}

function toDict(items: Array<RtppValue | Pair>): RtppDict {
  const dict: RtppDict = {};
  for (const item of items) {
    if (!isPair(item)) throw new NgRequestError('Entry in rtpp-flags dictionary without "="');
    if (item.key === '__proto__') continue;
    dict[item.key] = item.value;
  }
  return dict;
}

function pairText(item: RtppValue | Pair): RtppValue {
  if (!isPair(item)) return item;
  if (typeof item.value === 'string') return `${item.key}=${item.value}`;
  throw new NgRequestError('Malformed rtpp-flags: "key=[…]" inside a list');
}

/** rtpengine's bare transport words, combined bitwise (SRTP 1, AVPF 2, DTLS 4). */
class TransportWords {
  private bits = 0;
  private seen = false;

  take(word: string): boolean {
    const exact = EXACT_TRANSPORTS.get(word);
    if (exact !== undefined) {
      this.bits = exact;
    } else if (word === 'RTP') this.bits &= ~1;
    else if (word === 'AVP') this.bits &= ~2;
    else if (word === 'SRTP') this.bits |= 1;
    else if (word === 'AVPF') this.bits |= 2;
    else if (word === 'DTLS') this.bits |= 4;
    else return false;
    this.seen = true;
    return true;
  }

  protocol(): string | undefined {
    return this.seen ? TRANSPORTS[this.bits] : undefined;
  }
}

const TRANSPORTS: Array<string | undefined> = [
  'RTP/AVP', 'RTP/SAVP', 'RTP/AVPF', 'RTP/SAVPF', 'UDP/TLS/RTP/SAVP', undefined, 'UDP/TLS/RTP/SAVPF', undefined,
];

const EXACT_TRANSPORTS = new Map<string, number>([
  ['RTP/AVP', 0], ['RTP/SAVP', 1], ['RTP/AVPF', 2], ['RTP/SAVPF', 3],
  ['UDP/TLS/RTP/SAVP', 4], ['UDP/TLS/RTP/SAVPF', 6],
]);
