/**
 * RFC 3261 section 17 transactions as a proxy needs them, with RFC 6026's Accepted state.
 *
 * Server transactions absorb retransmitted requests (answering them with the last response),
 * retransmit a final non-2xx answer to an INVITE over UDP until the ACK comes (timers G, H, I)
 * and keep a non-INVITE's final answer for retransmissions (J). Client transactions retransmit
 * over UDP (A doubling from T1, E capped at T2), give up after 64*T1 (B, F), ACK a final
 * non-2xx answer to an INVITE themselves (D), pass every 2xx of an INVITE up (the proxy
 * forwards 2xx retransmissions) and drop retransmitted non-2xx finals (K).
 *
 * Matching follows 17.1.3 and 17.2.3: client transactions by the branch of our Via and the
 * CSeq method; server transactions by the top Via's branch, sent-by and method (ACK matches
 * its INVITE). Every timer is cleared when its transaction ends; `close` ends them all.
 */
import { header, headerValues, serialize, SipRequest, SipResponse } from './message';
import { parseCSeq, parseVia } from './header-values';
import { destinationKey, Destination, Source } from './transport';

/** RFC 3261's timer values (ms); tests shrink them. */
export interface TimerValues {
  t1: number;
  t2: number;
  t4: number;
  /** How long a proxy lets an INVITE ring once a provisional came (RFC 3261 16.6 step 11: > 3 min). */
  c: number;
}

export const rfcTimers: TimerValues = { t1: 500, t2: 4000, t4: 5000, c: 181_000 };

export interface TransactionSender {
  /** Responses (and hop-by-hop ACKs) back where they belong. */
  send(to: Source, bytes: Buffer): void;
  /** Requests to a next hop, transport errors reported. */
  sendRequest(to: Destination, bytes: Buffer): void;
}

export type ClientOutcome = 'timeout' | 'transport';

export interface ClientHandlers {
  onResponse(response: SipResponse, tx: ClientTransaction): void;
  onFailure(reason: ClientOutcome, tx: ClientTransaction): void;
}

type ClientState = 'calling' | 'proceeding' | 'accepted' | 'completed' | 'terminated';
type ServerState = 'proceeding' | 'accepted' | 'completed' | 'confirmed' | 'terminated';

export function serverKey(req: SipRequest): string | null {
  const topVia = headerValues(req, 'via')[0];
  const via = topVia ? parseVia(topVia) : null;
  const branch = via?.params.get('branch');
  if (!via || !branch || !branch.startsWith('z9hG4bK')) return null;
  const method = req.method === 'ACK' ? 'INVITE' : req.method;
  return `${branch}|${via.host}:${via.port ?? 5060}|${method}`;
}

function clientKey(branch: string, method: string): string {
  return `${branch}|${method === 'ACK' ? 'INVITE' : method}`;
}

export class ServerTransaction {
  state: ServerState = 'proceeding';
  lastResponse: Buffer | null = null;
  /** Highest status answered so far (0: none). */
  status = 0;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly source: Source,
    private readonly layer: TransactionLayer,
  ) {}

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }

  private get t(): TimerValues {
    return this.layer.timers;
  }

  get reliable(): boolean {
    return this.source.transport === 'tcp';
  }

  /** Sends a response (1xx any number of times, one final; 2xx of an INVITE may repeat). */
  respond(response: SipResponse): void {
    if (this.state === 'terminated' || this.state === 'completed' || this.state === 'confirmed') return;
    const bytes = serialize(response);
    this.lastResponse = bytes;
    this.status = Math.max(this.status, response.status);
    this.layer.sendResponse(this.source, response, bytes);
    if (response.status < 200) return;
    if (this.isInvite && response.status < 300) {
      if (this.state === 'accepted') return;
      this.state = 'accepted';
      this.after(64 * this.t.t1, () => this.terminate());
      return;
    }
    this.state = 'completed';
    if (!this.isInvite) {
      this.after(this.reliable ? 0 : 64 * this.t.t1, () => this.terminate());
      return;
    }
    if (!this.reliable) this.retransmitFinal(this.t.t1);
    this.after(64 * this.t.t1, () => this.terminate());
  }

  /** A retransmission of the request: the last response again (not in Accepted: RFC 6026). */
  retransmitted(): void {
    if (this.lastResponse && this.state !== 'accepted') this.layer.sender.send(this.source, this.lastResponse);
  }

  /** The ACK of a final non-2xx answer: stop retransmitting (timer I). */
  acked(): void {
    if (this.state !== 'completed') return;
    this.state = 'confirmed';
    this.clear();
    this.after(this.reliable ? 0 : this.t.t4, () => this.terminate());
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.clear();
    this.layer.removeServer(this);
  }

  private retransmitFinal(interval: number): void {
    this.after(interval, () => {
      if (this.state !== 'completed' || !this.lastResponse) return;
      this.layer.sender.send(this.source, this.lastResponse);
      this.retransmitFinal(Math.min(interval * 2, this.t.t2));
    });
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
}

export class ClientTransaction {
  state: ClientState = 'calling';
  readonly key: string;
  readonly destinationKey: string;
  /** Whether any response arrived. */
  answered = false;
  private provisional = false;
  private bytes: Buffer;
  private timers: NodeJS.Timeout[] = [];
  private retransmitTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly request: SipRequest,
    readonly branch: string,
    readonly destination: Destination,
    private readonly handlers: ClientHandlers,
    private readonly layer: TransactionLayer,
  ) {
    this.key = clientKey(branch, request.method);
    this.destinationKey = destinationKey(destination);
    this.bytes = serialize(request);
  }

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }

  private get t(): TimerValues {
    return this.layer.timers;
  }

  start(): void {
    this.layer.sender.sendRequest(this.destination, this.bytes);
    if (this.destination.transport === 'udp') this.scheduleRetransmit(this.t.t1);
    this.after(64 * this.t.t1, () => this.fail('timeout'));
  }

  received(response: SipResponse): void {
    if (this.state === 'terminated') return;
    this.answered = true;
    const status = response.status;
    if (status < 200) {
      if (this.state !== 'calling' && this.state !== 'proceeding') return;
      this.state = 'proceeding';
      // INVITE: a provisional stops timer A and B gives way to C; non-INVITE: E goes on at T2
      if (this.isInvite && !this.provisional) {
        this.provisional = true;
        this.clear();
        this.after(this.t.c, () => this.fail('timeout'));
      } else if (!this.isInvite && this.destination.transport === 'udp' && this.retransmitTimer) this.scheduleRetransmit(this.t.t2);
      this.handlers.onResponse(response, this);
      return;
    }
    if (this.isInvite && status < 300) {
      if (this.state !== 'accepted') {
        this.state = 'accepted';
        this.clear();
        this.after(64 * this.t.t1, () => this.terminate());
      }
      this.handlers.onResponse(response, this);
      return;
    }
    if (this.isInvite) this.layer.sender.sendRequest(this.destination, serialize(ackFor(this.request, response)));
    if (this.state === 'completed') return;
    this.state = 'completed';
    this.clear();
    const linger = this.destination.transport === 'tcp' ? 0 : this.isInvite ? 64 * this.t.t1 : this.t.t4;
    this.after(linger, () => this.terminate());
    this.handlers.onResponse(response, this);
  }

  /** The transport refused the request: fails now if no response came yet. */
  transportError(): void {
    if (this.state === 'calling' || (this.state === 'proceeding' && !this.isInvite)) this.fail('transport');
  }

  /** Stops retransmitting (the proxy gave up on this hop) but still hears late responses. */
  stopRetransmitting(): void {
    this.stopRetransmit();
  }

  /** Stops retransmitting and forgets the transaction without telling the handlers. */
  abandon(): void {
    this.terminate();
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.clear();
    this.layer.removeClient(this);
  }

  private fail(reason: ClientOutcome): void {
    if (this.state === 'terminated' || this.state === 'completed' || this.state === 'accepted') return;
    this.terminate();
    this.handlers.onFailure(reason, this);
  }

  private scheduleRetransmit(interval: number): void {
    this.stopRetransmit();
    this.retransmitTimer = setTimeout(() => {
      if (this.state !== 'calling' && this.state !== 'proceeding') return;
      this.layer.sender.sendRequest(this.destination, this.bytes);
      this.scheduleRetransmit(this.isInvite ? interval * 2 : Math.min(interval * 2, this.t.t2));
    }, interval);
    this.retransmitTimer.unref();
  }

  private stopRetransmit(): void {
    if (this.retransmitTimer) clearTimeout(this.retransmitTimer);
    this.retransmitTimer = null;
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(fn, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private clear(): void {
    this.stopRetransmit();
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
}

/** The hop-by-hop ACK of a non-2xx final answer (RFC 3261 17.1.1.3). */
export function ackFor(invite: SipRequest, response: SipResponse): SipRequest {
  const pick = (key: string): string | undefined => header(invite, key);
  const headers = [
    { name: 'Via', key: 'via', value: headerValues(invite, 'via')[0] },
    ...invite.headers.filter((h) => h.key === 'route'),
    { name: 'Max-Forwards', key: 'max-forwards', value: '70' },
    { name: 'From', key: 'from', value: pick('from') ?? '' },
    { name: 'To', key: 'to', value: header(response, 'to') ?? pick('to') ?? '' },
    { name: 'Call-ID', key: 'call-id', value: pick('call-id') ?? '' },
    { name: 'CSeq', key: 'cseq', value: `${parseCSeq(pick('cseq') ?? '')?.seq ?? 1} ACK` },
  ];
  return { kind: 'request', method: 'ACK', uri: invite.uri, headers, body: Buffer.alloc(0) };
}

export class TransactionLayer {
  private readonly servers = new Map<string, ServerTransaction>();
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly byDestination = new Map<string, Set<ClientTransaction>>();

  constructor(
    readonly sender: TransactionSender,
    private readonly onResponseSent: (response: SipResponse) => void = () => undefined,
    readonly timers: TimerValues = rfcTimers,
  ) {}

  get serverCount(): number {
    return this.servers.size;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  findServer(key: string): ServerTransaction | undefined {
    return this.servers.get(key);
  }

  createServer(key: string, request: SipRequest, source: Source): ServerTransaction {
    const tx = new ServerTransaction(key, request, source, this);
    this.servers.set(key, tx);
    return tx;
  }

  /** Starts a client transaction; the branch must be unique (our Via's). */
  createClient(request: SipRequest, branch: string, destination: Destination, handlers: ClientHandlers): ClientTransaction {
    const tx = new ClientTransaction(request, branch, destination, handlers, this);
    this.clients.set(tx.key, tx);
    let set = this.byDestination.get(tx.destinationKey);
    if (!set) this.byDestination.set(tx.destinationKey, (set = new Set()));
    set.add(tx);
    tx.start();
    return tx;
  }

  /** A response whose top Via branch is ours: true when a client transaction took it. */
  response(response: SipResponse, branch: string): boolean {
    const method = parseCSeq(header(response, 'cseq') ?? '')?.method ?? '';
    const tx = this.clients.get(clientKey(branch, method));
    if (!tx) return false;
    tx.received(response);
    return true;
  }

  transportError(destination: string): void {
    const set = this.byDestination.get(destination);
    if (!set) return;
    for (const tx of [...set]) tx.transportError();
  }

  sendResponse(to: Source, response: SipResponse, bytes: Buffer): void {
    this.sender.send(to, bytes);
    this.onResponseSent(response);
  }

  removeServer(tx: ServerTransaction): void {
    if (this.servers.get(tx.key) === tx) this.servers.delete(tx.key);
  }

  removeClient(tx: ClientTransaction): void {
    if (this.clients.get(tx.key) === tx) this.clients.delete(tx.key);
    const set = this.byDestination.get(tx.destinationKey);
    set?.delete(tx);
    if (set?.size === 0) this.byDestination.delete(tx.destinationKey);
  }

  close(): void {
    for (const tx of [...this.servers.values()]) tx.terminate();
    for (const tx of [...this.clients.values()]) tx.terminate();
  }
}
