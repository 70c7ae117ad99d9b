// A SIP user agent client for the alternatePath tests, playing seed 002's network phone: it
// sends each request to the first hop of its route set from a UDP socket connected to that hop,
// and when the hop refuses it (ICMP port unreachable) or does not answer in time it sends the
// same request to the next address, taken from the hop's alternatePath. Responses come back
// to its Via address. Built on rtphub's own parser and header readers.
import dgram from 'node:dgram';
import { alternatesOf } from '../../src/sip/alternate-path';
import { parseNameAddr, parseUri, parseVia, tagOf } from '../../src/sip/header-values';
import { header, headerValues, serialize, SipRequest, SipResponse } from '../../src/sip/message';
import { parseMessage } from '../../src/sip/parser';

export interface Hop {
  address: string;
  port: number;
}

export interface Dialog {
  callId: string;
  fromTag: string;
  toTag: string;
  remoteTarget: string;
  /** Record-Route of the 2xx, in the order the caller uses it (reversed). */
  routeSet: string[];
  cseq: number;
}

export class TestUa {
  private readonly waiting = new Map<string, (r: SipResponse) => void>();
  private counter = 0;
  /** Addresses each request was sent to, in order (for assertions). */
  readonly sentTo: string[] = [];

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (bytes) => {
      let msg;
      try {
        msg = parseMessage(bytes);
      } catch {
        return;
      }
      if (msg.kind !== 'response' || msg.status < 200) return;
      const branch = parseVia(headerValues(msg, 'via')[0] ?? '')?.params.get('branch') ?? '';
      this.waiting.get(branch)?.(msg);
    });
  }

  static async open(): Promise<TestUa> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new TestUa(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    this.socket.close();
  }

  newBranch(): string {
    return `z9hG4bKua${process.pid}x${++this.counter}`;
  }

  /**
   * Sends `req` (its top Via's branch identifies it) to each hop in turn until one gives a
   * final response; a hop that refuses or is silent for `timeoutMs` is skipped.
   */
  async send(req: SipRequest, hops: Hop[], timeoutMs = 1000): Promise<SipResponse> {
    const branch = parseVia(headerValues(req, 'via')[0] ?? '')?.params.get('branch') ?? '';
    for (const hop of hops) {
      const response = await this.tryHop(req, branch, hop, timeoutMs);
      if (response) return response;
    }
    throw new Error(`no hop answered ${req.method}: tried ${hops.map((h) => `${h.address}:${h.port}`).join(', ')}`);
  }

  /** Fire and forget (ACK) to the first hop. */
  sendAck(req: SipRequest, hop: Hop): void {
    this.socket.send(serialize(req), hop.port, hop.address);
  }

  private tryHop(req: SipRequest, branch: string, hop: Hop, timeoutMs: number): Promise<SipResponse | null> {
    this.sentTo.push(`${req.method} ${hop.address}:${hop.port}`);
    return new Promise((resolve) => {
      const out = dgram.createSocket('udp4');
      let done = false;
      const finish = (r: SipResponse | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiting.delete(branch);
        out.close();
        resolve(r);
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      this.waiting.set(branch, (r) => finish(r));
      out.on('error', () => finish(null));
      out.bind(0, '127.0.0.1', () => out.connect(hop.port, hop.address, () => out.send(serialize(req))));
    });
  }
}

export function request(method: string, uri: string, lines: Record<string, string | string[]>, body = ''): SipRequest {
  const headers = Object.entries(lines).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((v) => ({ name, key: name.toLowerCase(), value: v })),
  );
  if (body) headers.push({ name: 'Content-Type', key: 'content-type', value: 'application/sdp' });
  return { kind: 'request', method, uri, headers, body: Buffer.from(body) };
}

/** The dialog a 2xx to our INVITE set up (RFC 3261 12.1.2). */
export function dialogOf(invite: SipRequest, ok: SipResponse): Dialog {
  const contact = parseNameAddr(header(ok, 'contact') ?? '');
  return {
    callId: header(invite, 'call-id') ?? '',
    fromTag: tagOf(header(invite, 'from') ?? '') ?? '',
    toTag: tagOf(header(ok, 'to') ?? '') ?? '',
    remoteTarget: contact?.uri ?? invite.uri,
    routeSet: headerValues(ok, 'record-route').reverse(),
    cseq: 1,
  };
}

/** The first hop of a route set and its alternatePath backups. */
export function hopsOf(route: string): Hop[] {
  const uri = parseUri(parseNameAddr(route)?.uri ?? '');
  if (!uri) throw new Error(`bad route ${route}`);
  return [{ address: uri.host, port: uri.port ?? 5060 }, ...alternatesOf(uri.params).map((a) => ({ address: a.host, port: a.port }))];
}
