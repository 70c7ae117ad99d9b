/**
 * A request that follows its route set (mid-dialog: re-INVITE, UPDATE, BYE, INFO…): sent to
 * its next hop (top Route, else Request-URI) in a client transaction. When that hop carries an
 * alternatePath (seed 002, claims 28–36) and fails (transport error, or no answer within the
 * first timeout) the same request goes to each backup in turn; the backup recognises the
 * primary's Route entry as standing for itself.
 *
 * A re-INVITE or UPDATE with SDP was offered to the call model by the front; the SDP of its 2xx
 * is the answer. When this front forwards a request as the backup of a failed primary, the
 * Record-Route entries of the primary in the responses are replaced with its own, so the rest
 * of the dialog comes straight to it (claim 17).
 */
import type { HostPort } from './alternate-path';
import { tagOf } from './header-values';
import { dialogLabels, hasSdp } from './media';
import { header, shiftHeaderValue, SipRequest, SipResponse } from './message';
import { ProxyCore, reply, withOwnVia } from './proxy-core';
import { NextHop, newBranch, replaceRecordRoute, resolve, transportOf } from './routing';
import type { ClientOutcome, ClientTransaction, ServerTransaction } from './transactions';
import type { Destination } from './transport';

export class RoutedRequest {
  private readonly targets: HostPort[];
  private index = 0;
  private client: ClientTransaction | null = null;
  private destination: Destination | null = null;
  private timer: NodeJS.Timeout | null = null;
  private done = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly callId: string;

  constructor(
    private readonly core: ProxyCore,
    private readonly tx: ServerTransaction,
    private readonly request: SipRequest,
    private readonly hop: NextHop,
    private readonly hash: string,
    /** The failed primary this front stands in for, when it does. */
    private readonly takeoverFrom: HostPort | undefined,
    /** The request's SDP was offered to the call model. */
    private readonly offered: boolean,
  ) {
    this.callId = header(request, 'call-id') ?? '';
    this.targets = [{ host: hop.uri.host, port: hop.uri.port ?? 5060 }, ...hop.alternates];
  }

  async start(): Promise<void> {
    if (this.request.method === 'INVITE') reply(this.core, this.tx, 100);
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    const target = this.targets[this.index];
    let destination: Destination;
    try {
      destination = await resolve(target.host, target.port, transportOf(this.hop.uri));
    } catch {
      this.fail('transport');
      return;
    }
    // a hop that failed lately is skipped while a backup remains (the previous request found it dead)
    if (this.index + 1 < this.targets.length && this.core.hopFailedRecently(destination)) {
      this.index++;
      await this.attempt();
      return;
    }
    this.destination = destination;
    if (this.index > 0) this.core.counters.alternateRetries++;
    const branch = newBranch(this.hash);
    const request = withOwnVia(this.core, this.request, branch, destination.transport);
    this.client = this.core.layer.createClient(request, branch, destination, {
      onResponse: (response, client) => this.onResponse(response, client),
      onFailure: (reason, client) => {
        if (client === this.client) this.fail(reason);
      },
    });
    // a hop with backups gets the first timeout, as the proxy table's proxies do
    if (this.index + 1 < this.targets.length) {
      const client = this.client;
      this.timer = setTimeout(() => {
        if (!client.answered && client === this.client) this.fail('timeout');
      }, this.core.proxyTimeoutMs);
      this.timer.unref();
    }
  }

  private fail(reason: ClientOutcome): void {
    if (this.done) return;
    if (reason === 'timeout' && this.destination) this.core.hopFailed(this.destination);
    this.clearTimer();
    this.client?.stopRetransmitting();
    if (this.index + 1 < this.targets.length) {
      this.index++;
      this.attempt().catch((error) => this.internal(error));
      return;
    }
    this.done = true;
    reply(this.core, this.tx, reason === 'timeout' ? 408 : 503, reason === 'timeout' ? 'Request Timeout' : 'Service Unavailable');
  }

  private onResponse(response: SipResponse, client: ClientTransaction): void {
    if (client !== this.client || this.done) return;
    this.clearTimer();
    if (response.status === 100) return;
    shiftHeaderValue(response, 'via');
    if (response.status >= 200) this.done = response.status >= 300 || this.request.method !== 'INVITE';
    this.chain = this.chain.then(() => this.relay(response)).catch((error) => this.internal(error));
  }

  private async relay(response: SipResponse): Promise<void> {
    if (this.takeoverFrom && replaceRecordRoute(response, this.takeoverFrom, this.core.own)) this.core.counters.takeovers++;
    const ok = response.status >= 200 && response.status < 300;
    if (ok && this.offered && hasSdp(response)) {
      const fromTag = tagOf(header(response, 'from') ?? '') ?? '';
      const toTag = tagOf(header(response, 'to') ?? '') ?? '';
      try {
        response.body = await this.core.media.answer(response, this.callId, fromTag, toTag, dialogLabels(response));
      } catch (error) {
        this.core.counters.mediaErrors++;
        this.core.log(`call ${this.callId}: SDP of ${response.status} to ${this.request.method} not anchored`, error);
      }
    }
    this.tx.respond(response);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private internal(error: unknown): void {
    this.core.counters.internalErrors++;
    this.core.log(`call ${this.callId}: internal error`, error);
    if (this.done) return;
    this.done = true;
    reply(this.core, this.tx, 500);
  }
}
