/**
 * What the request handlers (InitialRequest, RoutedRequest) share with the front: its address,
 * transactions, the call model bridge, the proxy table, the counters, and the two ways of
 * building what leaves the front (a forwarded request with our Via; a response of our own).
 */
import type { ProxyTable } from '../proxy-table/proxy-table';
import type { SipCounters } from './counters';
import type { SipMedia } from './media';
import { header, headerValues, prependHeader, reasonPhrases, responseTo, setHeader, SipRequest } from './message';
import { ownVia, OwnAddress } from './routing';
import type { ClientTransaction, ServerTransaction, TransactionLayer } from './transactions';
import type { Destination, Transport } from './transport';

export interface ProxyCore {
  readonly own: OwnAddress;
  readonly layer: TransactionLayer;
  readonly media: SipMedia;
  readonly table: ProxyTable | null;
  readonly counters: SipCounters;
  /** First timeout: how long a next hop has to answer before the next one is tried (ms). */
  readonly proxyTimeoutMs: number;
  /** To-tag of the responses the front makes itself. */
  readonly localTag: string;
  /** A next hop failed (transport error, or no answer in time) within the last 64*T1. */
  hopFailedRecently(destination: Destination): boolean;
  hopFailed(destination: Destination): void;
  log(message: string, error?: unknown): void;
}

/** A copy of `req` with our Via on top, for a client transaction with `branch`. */
export function withOwnVia(core: ProxyCore, req: SipRequest, branch: string, transport: Transport): SipRequest {
  const copy: SipRequest = { ...req, headers: req.headers.map((h) => ({ ...h })) };
  prependHeader(copy, 'via', 'Via', ownVia(core.own, transport, branch));
  return copy;
}

/** Max-Forwards for the forwarded copy: decremented, or 70 when absent (RFC 3261 16.6 step 3). */
export function decrementMaxForwards(req: SipRequest): void {
  const value = header(req, 'max-forwards');
  setHeader(req, 'max-forwards', 'Max-Forwards', value === undefined ? '70' : String(Math.max(0, Number(value) - 1)));
}

export function reply(core: ProxyCore, tx: ServerTransaction, status: number, reason = reasonPhrases[status] ?? 'Error'): void {
  tx.respond(responseTo(tx.request, status, reason, core.localTag));
}

/** The CANCEL of a forwarded INVITE (RFC 3261 9.1): same Via branch, Route set and destination. */
export function cancelFor(invite: SipRequest): SipRequest {
  const keep = new Set(['route', 'from', 'to', 'call-id']);
  const seq = (header(invite, 'cseq') ?? '1').split(/\s+/)[0];
  const headers = [
    { name: 'Via', key: 'via', value: headerValues(invite, 'via')[0] ?? '' },
    ...invite.headers.filter((h) => keep.has(h.key)).map((h) => ({ ...h })),
    { name: 'CSeq', key: 'cseq', value: `${seq} CANCEL` },
    { name: 'Max-Forwards', key: 'max-forwards', value: '70' },
  ];
  return { kind: 'request', method: 'CANCEL', uri: invite.uri, headers, body: Buffer.alloc(0) };
}

export function sendCancel(core: ProxyCore, client: ClientTransaction): void {
  const cancel = cancelFor(client.request);
  core.layer.createClient(cancel, client.branch, client.destination, { onResponse: () => undefined, onFailure: () => undefined });
}
