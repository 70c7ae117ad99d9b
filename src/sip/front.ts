/**
 * The SIP front: a stateful, record-routing SIP proxy that anchors the media of the calls it
 * routes in the relay (the second control front over the one call model; the ng socket is the
 * first). Requests arrive on --listen-sip (UDP and TCP), are parsed strictly and matched to
 * transactions; what is new is checked (Max-Forwards, loops), stripped of our own Route
 * entries, and then either starts a dialog through the proxy table (InitialRequest) or follows
 * its route set (RoutedRequest). ACKs of 2xx and responses that no transaction knows are
 * forwarded statelessly (the latter only when their top Via is ours or names us as a backup).
 * OPTIONS to the front itself are answered, which makes it a proxy its peers can probe.
 *
 * Invariants: a message, however malformed, never throws out of `onMessage` (it is answered
 * 4xx when it can be, else dropped and counted); a call the front created ends (ports freed)
 * on BYE, CANCEL, a final error or when no proxy answers.
 */
import { randomBytes } from 'node:crypto';
import type { CallRegistry } from '../calls/call-registry';
import { Proxy, ProxyTable } from '../proxy-table/proxy-table';
import { ProxyProber } from '../proxy-table/proxy-prober';
import type { ProxySpec } from '../proxy-table/proxy-spec';
import { alternatesOf, HostPort } from './alternate-path';
import { bump, createSipCounters, SipCounters } from './counters';
import { SipParseError } from './errors';
import { parseUri, parseVia, socketHost, tagOf } from './header-values';
import { InitialRequest } from './initial-request';
import { dialogLabels, hasSdp, mediaFailure, SipMedia, unsupportedBody } from './media';
import { header, headerValues, reasonPhrases, responseTo, serialize, shiftHeaderValue, SipRequest, SipResponse, prependHeader, setHeader } from './message';
import { parseMessage } from './parser';
import { decrementMaxForwards, ProxyCore, reply } from './proxy-core';
import { RoutedRequest } from './routed-request';
import {
  isLoop,
  isOwn,
  loopHash,
  nextHop,
  NextHop,
  OwnAddress,
  ownVia,
  popOwnRoutes,
  replaceRecordRoute,
  resolve,
  stampVia,
  statelessBranch,
  transportOf,
  viaTarget,
} from './routing';
import { serverKey, ServerTransaction, TransactionLayer } from './transactions';
import { Destination, destinationKey, Source, SipTransport } from './transport';

export interface SipFrontOptions {
  address: string;
  port: number;
  /** Host written into Via and Record-Route (default: the listen address). */
  advertised?: string;
  proxies: readonly ProxySpec[];
  proxyTimeoutMs: number;
  probeIntervalMs: number;
  /** Probes answered in a row before a failed proxy is back. */
  probeAnswers: number;
  /** Backups of this front, HOST:PORT, written into alternatePath. */
  alternates: readonly string[];
  log?: (message: string, error?: unknown) => void;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY, MESSAGE, SUBSCRIBE';

export class SipFront implements ProxyCore {
  readonly counters: SipCounters = createSipCounters();
  readonly table: ProxyTable | null;
  readonly layer: TransactionLayer;
  readonly media: SipMedia;
  readonly localTag = randomBytes(6).toString('hex');
  readonly proxyTimeoutMs: number;
  own: OwnAddress;
  private readonly transport: SipTransport;
  private readonly prober: ProxyProber | null;
  /** INVITEs in progress by their server transaction key, for CANCEL. */
  private readonly invites = new Map<string, InitialRequest>();
  /** Next hops that failed lately (destination key → when), so ACKs and later requests skip them. */
  private readonly deadHops = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly options: SipFrontOptions,
    calls: CallRegistry,
  ) {
    this.proxyTimeoutMs = options.proxyTimeoutMs;
    this.media = new SipMedia(calls);
    calls.on('ended', (call) => this.media.forget(call.callId));
    this.transport = new SipTransport({
      address: options.address,
      port: options.port,
      onMessage: (message, source) => this.onMessage(message, source),
      onTransportError: (destination) => {
        this.deadHops.set(destination, Date.now());
        this.layer.transportError(destination);
      },
      onEvent: (message, error) => this.log(message, error),
    });
    this.layer = new TransactionLayer(this.transport, (response) => bump(this.counters.sent, `${Math.floor(response.status / 100)}xx`));
    this.table = options.proxies.length > 0 ? new ProxyTable(options.proxies, { returnAfter: options.probeAnswers }) : null;
    this.table?.onState((proxy, previous) => this.log(`proxy ${proxy.uri} ${previous} → ${proxy.state}${proxy.state === 'down' && proxy.lastFailure ? ` (${proxy.lastFailure})` : ''}`));
    this.prober = this.table ? new ProxyProber(this.table, (proxy) => this.probe(proxy), options.probeIntervalMs) : null;
    this.own = this.ownAddress(options.port);
  }

  async listen(): Promise<{ address: string; port: number }> {
    const bound = await this.transport.listen();
    this.own = this.ownAddress(bound.port);
    this.prober?.start();
    return bound;
  }

  get address(): { address: string; port: number } {
    return this.transport.address;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.prober?.stop();
    this.layer.close();
    await this.transport.close();
  }

  log(message: string, error?: unknown): void {
    this.options.log?.(message, error);
  }

  hopFailed(destination: Destination): void {
    if (this.deadHops.size >= 1024) this.pruneDeadHops();
    this.deadHops.set(destinationKey(destination), Date.now());
  }

  hopFailedRecently(destination: Destination): boolean {
    const at = this.deadHops.get(destinationKey(destination));
    return at !== undefined && Date.now() - at < 64 * this.layer.timers.t1;
  }

  private pruneDeadHops(): void {
    const horizon = Date.now() - 64 * this.layer.timers.t1;
    for (const [key, at] of this.deadHops) if (at < horizon) this.deadHops.delete(key);
  }

  private ownAddress(port: number): OwnAddress {
    const host = (this.options.advertised || this.options.address).toLowerCase();
    const aliases = [this.options.address.toLowerCase(), host];
    return { host: host.includes(':') && !host.startsWith('[') ? `[${host}]` : host, port, aliases, alternates: this.options.alternates };
  }

  /** Every datagram or stream message: parsed, then handled; nothing escapes. */
  onMessage(bytes: Buffer, source: Source): void {
    this.counters.received++;
    let msg;
    try {
      msg = parseMessage(bytes, source.transport);
    } catch (error) {
      this.parseFailure(error, source);
      return;
    }
    try {
      if (msg.kind === 'request') this.onRequest(msg, source);
      else this.onResponse(msg);
    } catch (error) {
      this.counters.internalErrors++;
      this.log('internal error handling a SIP message', error);
    }
  }

  private parseFailure(error: unknown, source: Source): void {
    if (!(error instanceof SipParseError)) {
      this.counters.internalErrors++;
      this.log('SIP parser threw', error);
      return;
    }
    bump(this.counters.parseErrors, String(error.status));
    const req = error.partial;
    if (!req || req.method === 'ACK') {
      this.counters.dropped++;
      return;
    }
    const to = stampVia(req, source);
    const response = responseTo(req, error.status, error.reason, this.localTag);
    this.transport.send(to, serialize(response));
    bump(this.counters.sent, `${Math.floor(error.status / 100)}xx`);
  }

  private onRequest(req: SipRequest, source: Source): void {
    bump(this.counters.requests, req.method);
    const replyTo = stampVia(req, source);
    const key = serverKey(req);
    if (!key) {
      this.statelessReply(req, replyTo, 400, 'Missing Via Branch');
      return;
    }
    if (req.method === 'ACK') {
      this.onAck(req, key);
      return;
    }
    if (req.method === 'CANCEL') {
      this.onCancel(req, replyTo);
      return;
    }
    const existing = this.layer.findServer(key);
    if (existing) {
      this.counters.retransmissions++;
      existing.retransmitted();
      return;
    }
    const tx = this.layer.createServer(key, req, replyTo);
    const maxForwards = header(req, 'max-forwards');
    if (maxForwards !== undefined && Number(maxForwards) === 0) {
      this.counters.tooManyHops++;
      reply(this, tx, 483);
      return;
    }
    const popped = popOwnRoutes(req, this.own);
    const hash = loopHash(req);
    if (isLoop(req, this.own, hash)) {
      this.counters.loops++;
      reply(this, tx, 482);
      return;
    }
    const toTag = tagOf(header(req, 'to') ?? '');
    if (!toTag && req.method === 'OPTIONS' && this.addressedToUs(req)) {
      const ok = responseTo(req, 200, 'OK', this.localTag);
      ok.headers.push({ name: 'Allow', key: 'allow', value: ALLOW }, { name: 'Accept', key: 'accept', value: 'application/sdp' });
      tx.respond(ok);
      return;
    }
    if (unsupportedBody(req) && (req.method === 'INVITE' || req.method === 'UPDATE')) {
      const refusal = responseTo(req, 415, reasonPhrases[415], this.localTag);
      refusal.headers.push({ name: 'Accept', key: 'accept', value: 'application/sdp' });
      tx.respond(refusal);
      return;
    }
    if (!toTag) {
      const initial = new InitialRequest(this, tx, req, hash, source.transport, () => this.invites.delete(key));
      if (req.method === 'INVITE') this.invites.set(key, initial);
      initial.start().catch((error) => this.internal(tx, error));
      return;
    }
    this.routed(tx, req, hash, popped.takeoverFrom).catch((error) => this.internal(tx, error));
  }

  /** A request that follows its Route set or Request-URI (mid-dialog, or pre-routed). */
  private async routed(tx: ServerTransaction, req: SipRequest, hash: string, takeoverFrom: HostPort | undefined): Promise<void> {
    const hop = nextHop(req);
    if (!hop) {
      reply(this, tx, 416);
      return;
    }
    if (isOwn(this.own, { host: hop.uri.host, port: hop.uri.port ?? 5060 })) {
      // addressed to us and not a dialog we route: nothing to forward it to
      reply(this, tx, req.method === 'BYE' ? 481 : 404);
      return;
    }
    if (takeoverFrom) this.counters.takeovers++;
    decrementMaxForwards(req);
    const callId = header(req, 'call-id') ?? '';
    let offered = false;
    if (req.method === 'BYE') void this.media.end(callId);
    else if ((req.method === 'INVITE' || req.method === 'UPDATE') && hasSdp(req) && this.media.has(callId)) {
      const fromTag = tagOf(header(req, 'from') ?? '') ?? '';
      const toTag = tagOf(header(req, 'to') ?? '');
      try {
        req.body = await this.media.offer(req, callId, fromTag, toTag, undefined, dialogLabels(req));
        offered = true;
      } catch (error) {
        this.counters.mediaErrors++;
        const failure = mediaFailure(error);
        reply(this, tx, failure.status, failure.reason);
        return;
      }
    }
    await new RoutedRequest(this, tx, req, hop, hash, takeoverFrom, offered).start();
  }

  /** ACK: of a non-2xx (absorbed by its transaction) or of a 2xx (forwarded statelessly). */
  private onAck(req: SipRequest, key: string): void {
    const tx = this.layer.findServer(key);
    if (tx && (tx.state === 'completed' || tx.state === 'confirmed')) {
      tx.acked();
      return;
    }
    const maxForwards = header(req, 'max-forwards');
    if (maxForwards !== undefined && Number(maxForwards) === 0) return;
    popOwnRoutes(req, this.own);
    const hop = nextHop(req);
    if (!hop || isOwn(this.own, { host: hop.uri.host, port: hop.uri.port ?? 5060 })) {
      this.counters.dropped++;
      return;
    }
    decrementMaxForwards(req);
    const callId = header(req, 'call-id') ?? '';
    const branch = statelessBranch(parseVia(headerValues(req, 'via')[0] ?? '')?.params.get('branch') ?? '');
    const forward = async (): Promise<void> => {
      if (hasSdp(req) && this.media.has(callId)) {
        // the answer to a late offer (made in the 2xx): the caller answers the callee
        const fromTag = tagOf(header(req, 'to') ?? '') ?? '';
        const toTag = tagOf(header(req, 'from') ?? '') ?? '';
        req.body = await this.media.answer(req, callId, fromTag, toTag, dialogLabels(req)).catch((error) => {
          this.counters.mediaErrors++;
          this.log(`call ${callId}: SDP of ACK not anchored`, error);
          return req.body;
        });
      }
      const destination = await this.ackDestination(hop);
      prependHeader(req, 'via', 'Via', ownVia(this.own, destination.transport, branch));
      this.transport.sendRequest(destination, serialize(req));
    };
    forward().catch((error) => this.log(`call ${callId}: ACK not forwarded`, error));
  }

  /**
   * Where an ACK goes: its next hop, or, when that hop failed lately and carries an alternatePath,
   * the first backup that did not (an ACK has no response to time out on; the request it
   * acknowledges already found the primary dead).
   */
  private async ackDestination(hop: NextHop): Promise<Destination> {
    const transport = transportOf(hop.uri);
    const primary = await resolve(hop.uri.host, hop.uri.port ?? 5060, transport);
    if (!this.hopFailedRecently(primary)) return primary;
    for (const alt of hop.alternates) {
      const backup = await resolve(alt.host, alt.port, transport);
      if (!this.hopFailedRecently(backup)) return backup;
    }
    return primary;
  }

  /** CANCEL (RFC 3261 16.10): 200 to it, then the matching INVITE's branch is cancelled. */
  private onCancel(req: SipRequest, replyTo: Source): void {
    const key = serverKey({ ...req, method: 'INVITE' });
    const initial = key ? this.invites.get(key) : undefined;
    if (!initial) {
      this.statelessReply(req, replyTo, 481);
      return;
    }
    this.statelessReply(req, replyTo, 200);
    this.invites.delete(key as string);
    initial.cancel();
  }

  /**
   * A response. Ours (top Via branch) goes to its client transaction. One that no transaction
   * knows is forwarded statelessly only when its top Via names us, or names a primary whose
   * alternatePath lists us (the primary died after forwarding the request: seed 002, FIG. 4).
   */
  private onResponse(res: SipResponse): void {
    this.counters.responses++;
    const top = headerValues(res, 'via')[0] ?? '';
    const via = parseVia(top);
    if (!via) {
      this.counters.dropped++;
      return;
    }
    const branch = via.params.get('branch') ?? '';
    if (branch && this.layer.response(res, branch)) return;
    const named: HostPort = { host: via.host, port: via.port ?? 5060 };
    const ours = isOwn(this.own, named);
    const backup = !ours && alternatesOf(via.params).some((alt) => isOwn(this.own, alt));
    if (!backup) {
      this.counters.dropped++;
      return;
    }
    this.counters.takeovers++;
    shiftHeaderValue(res, 'via');
    replaceRecordRoute(res, named, this.own);
    const target = viaTarget(headerValues(res, 'via')[0] ?? '');
    if (!target) {
      this.counters.dropped++;
      return;
    }
    this.transport.send(target, serialize(res));
  }

  private statelessReply(req: SipRequest, to: Source, status: number, reason = reasonPhrases[status] ?? 'Error'): void {
    const response = responseTo(req, status, reason, this.localTag);
    this.transport.send(to, serialize(response));
    bump(this.counters.sent, `${Math.floor(status / 100)}xx`);
  }

  /** The Request-URI names this front and no user (OPTIONS keep-alives, health probes). */
  private addressedToUs(req: SipRequest): boolean {
    const uri = parseUri(req.uri);
    return uri !== null && uri.user === undefined && isOwn(this.own, { host: uri.host, port: uri.port ?? 5060 });
  }

  /** A bug, not a crash: counted, logged, and the request answered 500 if it was not answered. */
  private internal(tx: ServerTransaction, error: unknown): void {
    this.counters.internalErrors++;
    this.log(`internal error on ${tx.request.method}`, error);
    if (tx.status < 200) reply(this, tx, 500);
  }

  /** One OPTIONS health probe: true when the proxy answered anything in time. */
  private probe(proxy: Proxy): Promise<boolean> {
    const timeoutMs = Math.max(this.proxyTimeoutMs, 200);
    return new Promise((resolveProbe) => {
      const branch = `z9hG4bKrhprobe${randomBytes(6).toString('hex')}`;
      const target = `sip:${proxy.spec.host}:${proxy.spec.port}`;
      const req: SipRequest = {
        kind: 'request',
        method: 'OPTIONS',
        uri: target,
        headers: [
          { name: 'Via', key: 'via', value: ownVia(this.own, proxy.spec.transport, branch) },
          { name: 'Max-Forwards', key: 'max-forwards', value: '70' },
          { name: 'From', key: 'from', value: `<sip:rtphub@${this.own.host}:${this.own.port}>;tag=${this.localTag}` },
          { name: 'To', key: 'to', value: `<${target}>` },
          { name: 'Call-ID', key: 'call-id', value: `probe-${branch}` },
          { name: 'CSeq', key: 'cseq', value: '1 OPTIONS' },
        ],
        body: Buffer.alloc(0),
      };
      setHeader(req, 'content-length', 'Content-Length', '0');
      let settled = false;
      const settle = (answered: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.abandon();
        resolveProbe(answered);
      };
      const destination = { transport: proxy.spec.transport, address: socketHost(proxy.spec.host), port: proxy.spec.port };
      const client = this.layer.createClient(req, branch, destination, {
        onResponse: () => settle(true),
        onFailure: () => settle(false),
      });
      const timer = setTimeout(() => settle(false), timeoutMs);
      timer.unref();
    });
  }
}
