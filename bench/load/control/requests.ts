/**
 * The ng requests of the control-rate benchmark, shaped like Kamailio's rtpengine module
 * sends them for a plain SIP call: an `offer` with the caller's G.711 SDP, an `answer`
 * with the callee's, and a `delete` with `delete delay: 0` so ended calls do not pile up.
 * Each command is bencoded once into a template around its call-id, so building a
 * request costs one string concatenation: the generator, not the relay, must be cheap.
 */
import { encode, type BEncodable } from '../../../src/ng/bencode';

export type CommandName = 'offer' | 'answer' | 'delete';
export const COMMANDS: readonly CommandName[] = ['offer', 'answer', 'delete'];

const CALLER = '127.0.0.1';
const FROM_TAG = 'as7f2a9c1d';
const TO_TAG = 'bs91e0b6f4';
const CALLER_MEDIA_PORT = 7078;
const CALLEE_MEDIA_PORT = 9078;

function sdp(session: string, port: number, codecs: 'offer' | 'answer'): string {
  const formats = codecs === 'offer' ? '0 8 9 18 101' : '0 101';
  const maps =
    codecs === 'offer'
      ? ['a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:9 G722/8000', 'a=rtpmap:18 G729/8000', 'a=fmtp:18 annexb=no']
      : ['a=rtpmap:0 PCMU/8000'];
  return [
    'v=0',
    `o=${session} 1545997027 1 IN IP4 ${CALLER}`,
    's=-',
    `c=IN IP4 ${CALLER}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${formats}`,
    ...maps,
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/** A typical caller offer: G.711 first, G.722, G.729 and RFC 4733 events (also used by the SDP micro-benchmark). */
export const OFFER_SDP = sdp('caller', CALLER_MEDIA_PORT, 'offer');
export const ANSWER_SDP = sdp('callee', CALLEE_MEDIA_PORT, 'answer');

const common = {
  'from-tag': FROM_TAG,
  'received-from': ['IP4', CALLER],
  flags: ['trust-address'],
  replace: ['origin', 'session-connection'],
  ICE: 'remove',
};

/** The dictionaries, with `call-id` left to the template. */
export function commandDict(command: CommandName): Record<string, BEncodable> {
  switch (command) {
    case 'offer':
      return { command, ...common, 'via-branch': 'z9hG4bK776asdhds.0', sdp: OFFER_SDP };
    case 'answer':
      return { command, ...common, 'to-tag': TO_TAG, 'via-branch': 'z9hG4bK776asdhds.0', sdp: ANSWER_SDP };
    case 'delete':
      return { command, 'from-tag': FROM_TAG, 'to-tag': TO_TAG, 'delete delay': 0 };
  }
}

const MARKER = 'CALL-ID-MARKER';

/**
 * A bencoded request split around its call-id: `head + len:callId + tail`. Every byte is
 * below 0x80, so the latin1 string and the wire bytes are the same.
 */
export class RequestTemplate {
  private readonly head: string;
  private readonly tail: string;

  constructor(dict: Record<string, BEncodable>) {
    const text = encode({ ...dict, 'call-id': MARKER }).toString('latin1');
    const field = `${MARKER.length}:${MARKER}`;
    const at = text.indexOf(field);
    if (at < 0 || text.indexOf(field, at + 1) >= 0) throw new Error('request template: call-id marker not found exactly once');
    this.head = text.slice(0, at);
    this.tail = text.slice(at + field.length);
  }

  /** The datagram `<cookie> <dict>` for one call-id (ASCII call-ids only). */
  datagram(cookie: string, callId: string): Buffer {
    return Buffer.from(`${cookie} ${this.head}${callId.length}:${callId}${this.tail}`, 'latin1');
  }
}

export function templates(): Record<CommandName, RequestTemplate> {
  return {
    offer: new RequestTemplate(commandDict('offer')),
    answer: new RequestTemplate(commandDict('answer')),
    delete: new RequestTemplate(commandDict('delete')),
  };
}
