/**
 * The SIP front's side of the call model (claims 2–4 and 11–12 of seed 000): the SDP of an
 * INVITE, re-INVITE or UPDATE is an offer, the SDP of a 1xx/2xx (or of the ACK after a late
 * offer) the answer; each returns the SDP rewritten to the relay's ports, which replaces the
 * body. The SIP headers of each party go with it as labels, so the call's restoration record
 * carries the dialog (call-id, tags, From, To, Contact, route set, CSeq) as well as its media.
 *
 * An answer seen again unchanged (183 then 200 with the same SDP, 2xx retransmissions) reuses
 * the rewritten SDP instead of asking the call model again.
 */
import type { CallRegistry } from '../calls/call-registry';
import { CallError } from '../calls/errors';
import { header, headerValues, SipMessage } from './message';

export type MediaFailure = { status: number; reason: string };

/** Label keys of the SIP dialog in a party's restoration data. */
export const sipLabel = {
  callId: 'sip-call-id',
  from: 'sip-from',
  to: 'sip-to',
  contact: 'sip-contact',
  cseq: 'sip-cseq',
  requestUri: 'sip-request-uri',
  routeSet: 'sip-route-set',
  source: 'sip-source',
  proxy: 'sip-proxy',
} as const;

export function hasSdp(msg: SipMessage): boolean {
  if (msg.body.length === 0) return false;
  const type = header(msg, 'content-type');
  if (type === undefined) return false;
  return type.split(';')[0].trim().toLowerCase() === 'application/sdp';
}

/** A body the relay cannot anchor: a multipart or other type carrying media it cannot see. */
export function unsupportedBody(msg: SipMessage): boolean {
  if (msg.body.length === 0 || hasSdp(msg)) return false;
  const type = (header(msg, 'content-type') ?? '').toLowerCase();
  return type.startsWith('multipart/') || type === '';
}

/** The dialog's headers as this message states them, for the sender's party. */
export function dialogLabels(msg: SipMessage, extra: Record<string, string> = {}): Record<string, string> {
  const labels: Record<string, string> = {};
  const put = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') labels[key] = value;
  };
  put(sipLabel.callId, header(msg, 'call-id'));
  put(sipLabel.from, header(msg, 'from'));
  put(sipLabel.to, header(msg, 'to'));
  put(sipLabel.contact, header(msg, 'contact'));
  put(sipLabel.cseq, header(msg, 'cseq'));
  const routeSet = headerValues(msg, 'record-route');
  if (routeSet.length > 0) labels[sipLabel.routeSet] = routeSet.join(', ');
  if (msg.kind === 'request') put(sipLabel.requestUri, msg.uri);
  return Object.assign(labels, extra);
}

/** 4xx/5xx for what the call model refused. */
export function mediaFailure(error: unknown): MediaFailure {
  if (error instanceof CallError) {
    switch (error.reason) {
      case 'Ran out of ports':
      case 'Parallel session limit reached':
        return { status: 503, reason: 'Service Unavailable' };
      case 'Unknown call-id':
      case "Call-ID not found or tags didn't match":
        return { status: 481, reason: 'Call/Transaction Does Not Exist' };
      default:
        return { status: 488, reason: 'Not Acceptable Here' };
    }
  }
  return { status: 500, reason: 'Server Internal Error' };
}

export class SipMedia {
  private readonly answers = new Map<string, { input: Buffer; output: Buffer }>();

  constructor(private readonly calls: CallRegistry) {}

  async offer(msg: SipMessage, callId: string, fromTag: string, toTag: string | undefined, viaBranch: string | undefined, labels: Record<string, string>): Promise<Buffer> {
    this.answers.delete(callId);
    return this.calls.offer({ callId, fromTag, toTag, viaBranch, sdp: msg.body, labels });
  }

  async answer(msg: SipMessage, callId: string, fromTag: string, toTag: string, labels: Record<string, string>): Promise<Buffer> {
    const cached = this.answers.get(callId);
    if (cached && cached.input.equals(msg.body)) return cached.output;
    const output = await this.calls.answer({ callId, fromTag, toTag, sdp: msg.body, labels });
    this.answers.set(callId, { input: Buffer.from(msg.body), output });
    return output;
  }

  /** Ends the call now (BYE, CANCEL, a final error): its ports go back to the pool. */
  async end(callId: string): Promise<void> {
    this.answers.delete(callId);
    try {
      await this.calls.delete({ callId, delay: 0 });
    } catch (error) {
      if (!(error instanceof CallError)) throw error;
    }
  }

  forget(callId: string): void {
    this.answers.delete(callId);
  }

  has(callId: string): boolean {
    const call = this.calls.get(callId);
    return call !== undefined && !call.ended;
  }
}
