/**
 * Normalisation of an ng request dictionary into `NgRequest`, the one shape the call
 * model reads. Keys, flags and commands are matched in any spelling (see `flags.ts`);
 * `rtpp-flags` strings are parsed and merged as if their items were keys and flags.
 *
 * Invariants: a key of the wrong type, or a command that is missing or unknown, is an
 * `NgRequestError` whose `reason` goes back to the controller; an unknown key, flag or
 * value is never an error, only a warning in `warnings` (unknown keys are still kept in
 * `options`). Text values are read as UTF-8; the SDP stays bytes.
 */
import { isIP } from 'node:net';
import { BDict, BValue, asText, isDict, isList } from './bencode';
import { NgRequestError } from './errors';
import {
  LIST_PREFIXES,
  NgCommand,
  VALUE_PREFIXES,
  canonicalKey,
  canonicalName,
  commandName,
  isReplaceOption,
  knownFlag,
} from './flags';
import { RtppEntry, RtppValue, parseRtppFlags } from './rtpp-flags';

export type AddressFamily = 'IP4' | 'IP6';
export type EndpointLearning = 'off' | 'immediate' | 'delayed' | 'heuristic';
export type SipMessageType = 'request' | 'response';

/** A normalised ng request. */
export interface NgRequest {
  command: NgCommand;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  viaBranch?: string;
  /** The SDP body, as the bytes received. */
  sdp?: Buffer;
  /** Canonical flags (`trust-address`, `codec-strip-PCMU`…), each once, in order of appearance. */
  flags: string[];
  /** Canonical `replace` items: `origin`, `session-connection`, `session-name`, `sdp-version`… */
  replace: string[];
  /** Interface names: `[from, to]` (either may be missing). */
  direction: string[];
  addressFamily?: AddressFamily;
  receivedFrom?: { family?: AddressFamily; address: string };
  mediaAddress?: string;
  /**
   * Canonical `ICE` items: at most one mode (`remove`, `force`, `default`, `force-relay`,
   * `optional`; the last one given wins) plus extras such as `trickle` or `lite-both`.
   */
  ice: string[];
  /** Canonical `rtcp-mux` items: `offer`, `require`, `demux`, `accept`, `reject`. */
  rtcpMux: string[];
  transportProtocol?: string;
  /** Seconds; 0 means delete at once. */
  deleteDelay?: number;
  endpointLearning?: EndpointLearning;
  /** `supports` items, e.g. `load limit`. */
  supports: string[];
  sipMessageType?: SipMessageType;
  fromTags: string[];
  /** Every other key, by canonical name, with its value as received. */
  options: BDict;
  /** Unknown keys, flags and values, and ignored duplicates, in human-readable form. */
  warnings: string[];
}

/** Commands that need no `call-id`. */
const WITHOUT_CALL_ID = new Set<NgCommand>(['ping', 'list', 'statistics', 'cli']);
/** Commands that carry an SDP body. */
const WITH_SDP = new Set<NgCommand>(['offer', 'answer', 'publish']);

/**
 * rtpengine's basic checks, in its order and wording, for the fields a command cannot do
 * without; `undefined` if nothing is missing.
 */
export function missingField(req: NgRequest): string | undefined {
  if (WITH_SDP.has(req.command) && req.sdp === undefined) return 'No SDP body in message';
  if (!WITHOUT_CALL_ID.has(req.command) && !req.callId) return 'No call-id in message';
  if (WITH_SDP.has(req.command) && !req.fromTag) return 'No from-tag in message';
  if (req.command === 'answer' && !req.toTag) return 'No to-tag in message';
  return undefined;
}

/** Normalises a decoded request dictionary; throws `NgRequestError`. */
export function normaliseRequest(dict: BDict, warnings: string[] = []): NgRequest {
  const command = readCommand(dict);
  const req: NgRequest = {
    command,
    flags: [],
    replace: [],
    direction: [],
    ice: [],
    rtcpMux: [],
    supports: [],
    fromTags: [],
    options: {},
    warnings,
  };
  const b = new RequestBuilder(req);
  for (const key of Object.keys(dict)) b.option(key, dict[key], 'dict');
  return req;
}

function readCommand(dict: BDict): NgCommand {
  const raw = asText(dict.command);
  if (raw === undefined) throw new NgRequestError('Dictionary contains no key "command"');
  const command = commandName(raw);
  if (!command) throw new NgRequestError('Unrecognized command');
  return command;
}

type Source = 'dict' | 'rtpp';

/** Applies keys and flags to a request under construction. */
class RequestBuilder {
  constructor(private readonly req: NgRequest) {}

  option(rawKey: string, value: BValue, source: Source): void {
    const { key, known } = canonicalKey(rawKey);
    if (this.scalar(key, value, source)) return;
    if (this.list(key, value, source)) return;
    if (this.valuePrefixed(key, value)) return;
    if (key === 'command') return;
    if (!known) this.warn(`Unknown key "${rawKey}"`);
    setOption(this.req.options, key, value);
  }

  /** Keys with one string or integer value. Returns false if `key` is not one of them. */
  private scalar(key: string, value: BValue, source: Source): boolean {
    const req = this.req;
    switch (key) {
      case 'call-id': req.callId = text(key, value); return true;
      case 'from-tag': this.fromTag(text(key, value), source); return true;
      case 'to-tag': req.toTag = text(key, value); return true;
      case 'via-branch': req.viaBranch = text(key, value); return true;
      case 'sdp': req.sdp = bytes(key, value); return true;
      case 'address-family': req.addressFamily = this.addressFamily(text(key, value)); return true;
      case 'media-address': req.mediaAddress = this.address(key, text(key, value)); return true;
      case 'transport-protocol': req.transportProtocol = text(key, value); return true;
      case 'delete-delay': req.deleteDelay = integer(key, value); return true;
      case 'endpoint-learning': req.endpointLearning = this.learning(text(key, value)); return true;
      case 'sip-message-type': req.sipMessageType = this.sipMessageType(text(key, value)); return true;
      case 'rtpp-flags': this.rtppFlags(text(key, value), source); return true;
      default: return false;
    }
  }

  /** Keys with a list of strings (a single string is taken as a one-item list). */
  private list(key: string, value: BValue, source: Source): boolean {
    switch (key) {
      case 'flags': for (const f of texts(key, value)) this.flag(f); return true;
      case 'replace': for (const r of texts(key, value)) this.replace(r); return true;
      case 'ice': for (const i of texts(key, value)) this.ice(i); return true;
      case 'rtcp-mux': for (const m of texts(key, value)) this.rtcpMux(m); return true;
      case 'supports': pushAll(this.req.supports, texts(key, value)); return true;
      case 'from-tags': pushAll(this.req.fromTags, texts(key, value)); return true;
      case 'direction': this.direction(texts(key, value), source); return true;
      case 'received-from': this.receivedFrom(texts(key, value)); return true;
      default: return false;
    }
  }

  /**
   * `codec-strip=PCMU`, `SDES: [pad]`, `OSRTP=accept` and the like: one representation,
   * the flag form (`codec-strip-PCMU`, `sdes-pad`, `osrtp-accept`).
   */
  private valuePrefixed(key: string, value: BValue): boolean {
    const prefix = `${key}-`;
    if (!VALUE_PREFIXES.includes(prefix)) return false;
    for (const v of texts(key, value)) addOnce(this.req.flags, prefix + v);
    return true;
  }

  flag(raw: string): void {
    const name = raw.trim();
    const known = knownFlag(name);
    if (known) return addOnce(this.req.flags, known);
    const c = canonicalName(name);
    for (const [prefix, key] of LIST_PREFIXES) {
      if (c.startsWith(prefix) && c.length > prefix.length) {
        return this.option(key, Buffer.from(name.slice(prefix.length)), 'dict');
      }
    }
    const prefix = VALUE_PREFIXES.find((p) => c.startsWith(p) && c.length > p.length);
    if (prefix) return addOnce(this.req.flags, prefix + name.slice(prefix.length));
    this.warn(`Unknown flag "${raw}"`);
    addOnce(this.req.flags, c);
  }

  private fromTag(tag: string, source: Source): void {
    this.req.fromTag = tag;
    // rtpengine: a from-tag given in rtpp-flags overrides the message's and makes it directional
    if (source === 'rtpp') addOnce(this.req.flags, 'directional');
  }

  private replace(raw: string): void {
    const c = canonicalName(raw);
    if (!isReplaceOption(c)) this.warn(`Unknown replace option "${raw}"`);
    addOnce(this.req.replace, c);
  }

  /** ICE items; the modes exclude each other, so a later mode replaces an earlier one. */
  private ice(raw: string): void {
    const c = canonicalName(raw);
    if (!ICE_OPTIONS.has(c)) this.warn(`Unknown ICE option "${raw}"`);
    if (ICE_MODES.has(c)) this.req.ice = this.req.ice.filter((i) => !ICE_MODES.has(i));
    addOnce(this.req.ice, c);
  }

  private rtcpMux(raw: string): void {
    const c = canonicalName(raw);
    if (!RTCP_MUX_OPTIONS.has(c)) this.warn(`Unknown rtcp-mux option "${raw}"`);
    addOnce(this.req.rtcpMux, c);
  }

  private direction(names: string[], source: Source): void {
    // rtpp-flags give one `direction=` per interface; the dict gives the whole list
    if (source === 'dict') this.req.direction = [];
    for (const n of names) {
      if (this.req.direction.length < 2) this.req.direction.push(n);
      else this.warn('Too many direction interfaces');
    }
  }

  private receivedFrom(items: string[]): void {
    if (items.length === 1) {
      this.req.receivedFrom = { address: this.address('received-from', items[0]) ?? items[0] };
      return;
    }
    if (items.length !== 2) throw new NgRequestError('Wrong type for key "received-from": expected [family, address]');
    const family = this.addressFamily(items[0]);
    this.req.receivedFrom = { family, address: items[1] };
    if (!isIP(items[1])) this.warn(`Could not parse "received-from" address "${items[1]}"`);
  }

  private addressFamily(raw: string): AddressFamily | undefined {
    const up = raw.toUpperCase();
    if (up === 'IP4' || up === 'IP6') return up;
    this.warn(`Unknown address family "${raw}"`);
    return undefined;
  }

  private address(key: string, raw: string): string | undefined {
    if (isIP(raw)) return raw;
    this.warn(`Could not parse "${key}" address "${raw}"`);
    return undefined;
  }

  private learning(raw: string): EndpointLearning | undefined {
    const c = canonicalName(raw);
    if (c === 'off' || c === 'immediate' || c === 'delayed' || c === 'heuristic') return c;
    this.warn(`Unknown endpoint-learning "${raw}"`);
    return undefined;
  }

  private sipMessageType(raw: string): SipMessageType | undefined {
    const c = canonicalName(raw).replace(/^sip-/, '');
    if (c === 'request') return 'request';
    if (c === 'response' || c === 'reply') return 'response';
    this.warn(`Unknown SIP message type "${raw}"`);
    return undefined;
  }

  private rtppFlags(raw: string, source: Source): void {
    if (source === 'rtpp') return this.warn('rtpp-flags inside rtpp-flags ignored');
    for (const entry of parseRtppFlags(raw)) this.rtppEntry(entry);
  }

  private rtppEntry(entry: RtppEntry): void {
    if (entry.kind === 'option') return this.option(entry.key, rtppToBValue(entry.value), 'rtpp');
    const c = canonicalName(entry.name);
    if (c === 'internal' || c === 'external') return this.direction([entry.name], 'rtpp');
    this.flag(entry.name);
  }

  private warn(message: string): void {
    if (!this.req.warnings.includes(message)) this.req.warnings.push(message);
  }
}

const ICE_MODES = new Set(['remove', 'force', 'default', 'optional', 'force-relay']);

const ICE_OPTIONS = new Set([
  'remove', 'force', 'default', 'optional', 'force-relay', 'trickle', 'ice2',
  'lite', 'no-lite', 'lite-no', 'lite-off', 'lite-none', 'lite-fw', 'lite-fwd', 'lite-forward',
  'lite-offer', 'lite-backward', 'lite-backwards', 'lite-reverse', 'lite-answer', 'lite-back',
  'lite-bkw', 'lite-bk', 'lite-both',
]);

const RTCP_MUX_OPTIONS = new Set(['offer', 'require', 'demux', 'accept', 'reject']);

function wrongType(key: string, expected: string): NgRequestError {
  return new NgRequestError(`Wrong type for key "${key}": expected ${expected}`);
}

function text(key: string, v: BValue): string {
  const s = asText(v);
  if (s === undefined) throw wrongType(key, 'a string');
  return s;
}

function bytes(key: string, v: BValue): Buffer {
  if (!Buffer.isBuffer(v)) throw wrongType(key, 'a string');
  return v;
}

/** A list of strings; a single string counts as a list of one. */
function texts(key: string, v: BValue): string[] {
  const one = asText(v);
  if (one !== undefined) return [one];
  if (!isList(v)) throw wrongType(key, 'a list of strings');
  return v.map((item) => {
    const s = asText(item);
    if (s === undefined) throw wrongType(key, 'a list of strings');
    return s;
  });
}

/** An integer, given as a bencode integer or as decimal text (rtpengine takes both). */
function integer(key: string, v: BValue): number {
  if (typeof v === 'number') return v;
  const s = asText(v)?.trim();
  if (s !== undefined && /^-?\d{1,15}$/.test(s)) return Number(s);
  throw wrongType(key, 'an integer');
}

function rtppToBValue(v: RtppValue): BValue {
  if (typeof v === 'string') return Buffer.from(v);
  if (Array.isArray(v)) return v.map(rtppToBValue);
  const out: BDict = {};
  for (const k of Object.keys(v)) setOption(out, k, rtppToBValue(v[k]));
  return out;
}

/** Sets a key; a later list for the same key is appended, anything else replaces. */
function setOption(options: BDict, key: string, value: BValue): void {
  if (key === '__proto__') return;
  const prev = options[key];
  if (isList(prev) && isList(value)) options[key] = [...prev, ...value];
  else if (isDict(prev) && isDict(value)) options[key] = { ...prev, ...value };
  else options[key] = value;
}

function addOnce(list: string[], item: string): void {
  if (!list.includes(item)) list.push(item);
}

function pushAll(list: string[], items: string[]): void {
  for (const i of items) addOnce(list, i);
}
