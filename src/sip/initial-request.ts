/**
 * One request that starts a dialog (or stands alone) sent through the proxy table: the SIP
 * portion of a call goes to a proxy of the table while its RTP portion is anchored in the
 * relay (seed 000, claims 2–4, 13, 33–37).
 *
 * Each attempt is a client transaction to the proxy the table picks, with our Via and
 * Record-Route (alternatePath included). The proxy has the first timeout (`--proxy-timeout`)
 * to answer anything; if it does not, or its transport fails, the table takes it out of service
 * and the next pick is tried (the rest of the level, then the next level). Once a proxy
 * answered, the request is attached to it: its responses go back upstream in order, their SDP
 * becoming the call's answer; a final error or a CANCEL ends the call and frees its ports.
 */
import type { Proxy } from '../proxy-table/proxy-table';
import { tagOf } from './header-values';
import { dialogLabels, hasSdp, mediaFailure, sipLabel } from './media';
import { header, prependHeader, shiftHeaderValue, SipRequest, SipResponse } from './message';
import { decrementMaxForwards, ProxyCore, reply, sendCancel, withOwnVia } from './proxy-core';
import { newBranch, nextHop, ownRecordRoute, resolve, transportOf } from './routing';
import type { ClientOutcome, ClientTransaction, ServerTransaction } from './transactions';
import type { Destination, Transport } from './transport';

interface Attempt {
  proxy: Proxy | null;
  client: ClientTransaction;
  timer: NodeJS.Timeout | null;
  /** Gave up on (timeout): a provisional that still comes is CANCELled. */
  abandoned: boolean;
  /** Its failure was reported to the table already (first timeout, then kept waiting). */
  reported: boolean;
}

export class InitialRequest {
  private readonly tried = new Set<Proxy>();
  private attempt: Attempt | null = null;
  private attached = false;
  private finished = false;
  private cancelled = false;
  private timedOut = false;
  /** Responses are handled one after the other (an answer's SDP may take a moment). */
  private chain: Promise<void> = Promise.resolve();
  readonly callId: string;
  readonly fromTag: string;
  /** The request carried an SDP offer the call model took. */
  private offered = false;

  constructor(
    private readonly core: ProxyCore,
    readonly tx: ServerTransaction,
    /** The request as it leaves: own routes popped, body rewritten, without Via/Record-Route of ours. */
    private readonly template: SipRequest,
    private readonly hash: string,
    private readonly inboundTransport: Transport,
    /** Called once when upstream got a final answer (CANCEL no longer applies). */
    private readonly settled: () => void = () => undefined,
  ) {
    this.callId = header(template, 'call-id') ?? '';
    this.fromTag = tagOf(header(template, 'from') ?? '') ?? '';
  }

  get isInvite(): boolean {
    return this.template.method === 'INVITE';
  }

  /** Offers the SDP (INVITE), then sends the first attempt. */
  async start(): Promise<void> {
    if (this.isInvite) {
      this.core.counters.invites++;
      reply(this.core, this.tx, 100);
    }
    decrementMaxForwards(this.template);
    if (this.isInvite && hasSdp(this.template)) {
      const labels = dialogLabels(this.template, { [sipLabel.source]: `${this.tx.source.transport}:${this.tx.source.address}:${this.tx.source.port}` });
      try {
        this.template.body = await this.core.media.offer(this.template, this.callId, this.fromTag, undefined, undefined, labels);
        this.offered = true;
      } catch (error) {
        this.core.counters.mediaErrors++;
        const failure = mediaFailure(error);
        this.finish(failure.status, failure.reason);
        return;
      }
    }
    await this.next();
  }

  /** CANCEL from upstream (RFC 3261 16.10). */
  cancel(): void {
    if (this.finished) return;
    this.cancelled = true;
    this.core.counters.cancelled++;
    void this.core.media.end(this.callId);
    const a = this.attempt;
    if (a && a.client.state === 'proceeding') {
      sendCancel(this.core, a.client);
      return;
    }
    // nothing heard yet: CANCEL when (if) a provisional comes; upstream hears 487 now
    if (a) {
      a.abandoned = true;
      this.clearTimer(a);
      a.client.stopRetransmitting();
    }
    this.finish(487, 'Request Terminated');
  }

  private async next(): Promise<void> {
    if (this.finished || this.cancelled) return;
    const table = this.core.table;
    const proxy = table ? table.pick(this.tried) : null;
    let destination: Destination;
    if (table) {
      if (!proxy) {
        this.core.counters.noProxy++;
        this.finish(this.timedOut ? 408 : 503, this.timedOut ? 'Request Timeout' : 'No Proxy Available');
        return;
      }
      this.tried.add(proxy);
      try {
        destination = await resolve(proxy.spec.host, proxy.spec.port, proxy.spec.transport);
      } catch {
        // a name that does not resolve is a proxy that cannot be reached
        this.core.table?.failed(proxy, 'transport');
        await this.next();
        return;
      }
    } else {
      // no proxy table: an ordinary record-routing proxy towards the Request-URI
      const hop = nextHop(this.template);
      if (!hop) {
        this.finish(400, 'Bad Request-URI');
        return;
      }
      try {
        destination = await resolve(hop.uri.host, hop.uri.port ?? 5060, transportOf(hop.uri));
      } catch {
        this.finish(404, 'Not Found');
        return;
      }
    }
    this.send(proxy, destination);
  }

  private send(proxy: Proxy | null, destination: Destination): void {
    const branch = newBranch(this.hash);
    const request = withOwnVia(this.core, this.template, branch, destination.transport);
    if (this.isInvite) {
      prependHeader(request, 'record-route', 'Record-Route', ownRecordRoute(this.core.own, this.inboundTransport));
      if (destination.transport !== this.inboundTransport) {
        prependHeader(request, 'record-route', 'Record-Route', ownRecordRoute(this.core.own, destination.transport));
      }
    }
    const attempt: Attempt = { proxy, client: null as unknown as ClientTransaction, timer: null, abandoned: false, reported: false };
    this.attempt = attempt;
    attempt.client = this.core.layer.createClient(request, branch, destination, {
      onResponse: (response, client) => this.onResponse(attempt, response, client),
      onFailure: (reason) => this.onFailure(attempt, reason),
    });
    if (proxy) {
      attempt.timer = setTimeout(() => this.firstTimeout(attempt), this.core.proxyTimeoutMs);
      attempt.timer.unref();
    }
  }

  /**
   * The proxy did not answer within --proxy-timeout. It is out of service for later calls;
   * this call moves on to the next proxy, or, when there is none to try, keeps waiting for this
   * one (its transaction's own timer B still bounds the wait): failing over to nothing would
   * only fail the call sooner.
   */
  private firstTimeout(attempt: Attempt): void {
    attempt.timer = null;
    if (attempt.client.answered || attempt !== this.attempt || this.finished) return;
    const table = this.core.table;
    if (table && attempt.proxy && !table.hasCandidate(this.tried)) {
      table.failed(attempt.proxy, 'timeout');
      attempt.reported = true;
      this.timedOut = true;
      return;
    }
    this.onFailure(attempt, 'timeout');
  }

  private onFailure(attempt: Attempt, reason: ClientOutcome): void {
    if (attempt !== this.attempt || attempt.abandoned || this.finished) return;
    this.clearTimer(attempt);
    if (!this.attached) {
      if (attempt.proxy && !attempt.reported) this.core.table?.failed(attempt.proxy, reason);
      attempt.abandoned = true;
      attempt.client.stopRetransmitting();
      if (reason === 'timeout') this.timedOut = true;
      if (!attempt.proxy) {
        this.finish(reason === 'timeout' ? 408 : 503, reason === 'timeout' ? 'Request Timeout' : 'Service Unavailable');
        return;
      }
      this.next().catch((error) => this.internal(error));
      return;
    }
    // attached and then silent past timer C (or its connection dropped): give up on it
    if (attempt.client.state === 'proceeding') sendCancel(this.core, attempt.client);
    this.finish(408, 'Request Timeout');
  }

  private onResponse(attempt: Attempt, response: SipResponse, client: ClientTransaction): void {
    if (attempt !== this.attempt || attempt.abandoned) {
      // a hop we gave up on woke up: stop its ringing
      if (response.status < 200 && response.status > 100 && client.state === 'proceeding') sendCancel(this.core, client);
      return;
    }
    if (!this.attached) {
      this.attached = true;
      this.clearTimer(attempt);
      if (attempt.proxy) this.core.table?.answered(attempt.proxy);
    }
    if (this.cancelled && response.status < 200 && response.status > 100 && client.state === 'proceeding') sendCancel(this.core, client);
    if (response.status === 100) return;
    shiftHeaderValue(response, 'via');
    this.chain = this.chain.then(() => this.relay(attempt, response)).catch((error) => this.internal(error));
  }

  /** A response of the attached hop, upstream, with its SDP rewritten. */
  private async relay(attempt: Attempt, response: SipResponse): Promise<void> {
    const status = response.status;
    if (this.isInvite && status < 300 && hasSdp(response) && !this.cancelled) await this.answerMedia(attempt, response);
    if (status >= 200 && status < 300 && this.isInvite && !this.finished) this.core.counters.answered++;
    if (status >= 300) {
      if (this.isInvite) {
        this.core.counters.rejected++;
        await this.core.media.end(this.callId);
      }
      this.finished = true;
    }
    if (status >= 200 && status < 300) this.finished = true;
    if (this.finished) this.settled();
    this.tx.respond(response);
  }

  private async answerMedia(attempt: Attempt, response: SipResponse): Promise<void> {
    const toTag = tagOf(header(response, 'to') ?? '');
    if (!toTag) return;
    const labels = dialogLabels(response, attempt.proxy ? { [sipLabel.proxy]: attempt.proxy.uri } : {});
    try {
      response.body = this.offered
        ? await this.core.media.answer(response, this.callId, this.fromTag, toTag, labels)
        : // late offer: the callee offers in its 2xx, the caller answers in the ACK
          await this.core.media.offer(response, this.callId, toTag, this.fromTag, undefined, labels);
    } catch (error) {
      this.core.counters.mediaErrors++;
      this.core.log(`call ${this.callId}: SDP of ${response.status} not anchored`, error);
    }
  }

  private finish(status: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.settled();
    if (this.attempt) this.clearTimer(this.attempt);
    if (this.isInvite) void this.core.media.end(this.callId);
    reply(this.core, this.tx, status, reason);
  }

  private clearTimer(attempt: Attempt): void {
    if (attempt.timer) clearTimeout(attempt.timer);
    attempt.timer = null;
  }

  private internal(error: unknown): void {
    this.core.counters.internalErrors++;
    this.core.log(`call ${this.callId}: internal error`, error);
    this.finish(500, 'Server Internal Error');
  }
}
