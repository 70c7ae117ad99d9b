/**
 * The generator's two ng clients, behind one interface so their cost can be compared:
 *
 * - `TemplateClient` (default): requests built from pre-encoded templates, numeric cookies,
 *   one sweep timer for all retransmissions, and a reply checked by searching for
 *   `6:result2:ok` instead of decoding it (error replies are decoded, they are rare).
 * - `ProjectClient`: the project's own `NgClient` (src/ng/client.ts), which encodes every
 *   request and decodes every reply, with a timer per request.
 *
 * Both retransmit the identical datagram on timeout, as Kamailio does; the relays answer a
 * retransmission from their reply cache. Every request ends (reply or timeout) within
 * `timeoutMs × attempts`.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { asText, decode, isDict, type BEncodable } from '../../../src/ng/bencode';
import { NgClient, NgTimeoutError } from '../../../src/ng/client';
import { commandDict, templates, type CommandName, type RequestTemplate } from './requests';

export interface CommandReply {
  ok: boolean;
  /** `error-reason` of an error reply, or why there was no reply. */
  error?: string;
  timedOut: boolean;
}

export interface LoadClient {
  request(command: CommandName, callId: string): Promise<CommandReply>;
  /** Datagrams sent again after a timeout. */
  readonly retransmissions: number;
  close(): void;
}

export type ClientKind = 'template' | 'project';

export interface ClientSettings {
  port: number;
  timeoutMs: number;
  attempts: number;
}

export async function openClient(kind: ClientKind, settings: ClientSettings): Promise<LoadClient> {
  return kind === 'template' ? TemplateClient.open(settings) : new ProjectClient(settings);
}

interface Waiting {
  datagram: Buffer;
  resolve(reply: CommandReply): void;
  deadline: number;
  attempt: number;
}

const OK = Buffer.from('6:result2:ok');
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const SWEEP_MS = 20;
const HOST = '127.0.0.1';

class TemplateClient implements LoadClient {
  retransmissions = 0;
  private readonly waiting = new Map<number, Waiting>();
  private readonly templates = templates();
  private readonly sweeper: NodeJS.Timeout;
  private sequence = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly settings: ClientSettings,
  ) {
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('error', () => undefined);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
  }

  static async open(settings: ClientSettings): Promise<TemplateClient> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    socket.bind(0, HOST);
    await once(socket, 'listening');
    // connected: each send skips the address lookup, and only the relay's replies come in
    socket.connect(settings.port, HOST);
    await once(socket, 'connect');
    return new TemplateClient(socket, settings);
  }

  request(command: CommandName, callId: string): Promise<CommandReply> {
    const cookie = ++this.sequence;
    const template: RequestTemplate = this.templates[command];
    const datagram = template.datagram(String(cookie), callId);
    return new Promise((resolve) => {
      this.waiting.set(cookie, { datagram, resolve, deadline: Date.now() + this.settings.timeoutMs, attempt: 1 });
      this.socket.send(datagram);
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const w of this.waiting.values()) w.resolve({ ok: false, error: 'client closed', timedOut: true });
    this.waiting.clear();
    this.socket.close();
  }

  private onMessage(msg: Buffer): void {
    let cookie = 0;
    let i = 0;
    for (; i < msg.length && msg[i] >= 0x30 && msg[i] <= 0x39; i++) cookie = cookie * 10 + msg[i] - 0x30;
    if (i === 0 || msg[i] !== 0x20) return;
    const entry = this.waiting.get(cookie);
    if (!entry) return;
    this.waiting.delete(cookie);
    if (msg.indexOf(OK, i + 1) >= 0) entry.resolve({ ok: true, timedOut: false });
    else entry.resolve({ ok: false, error: errorReason(msg.subarray(i + 1)), timedOut: false });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [cookie, w] of this.waiting) {
      if (w.deadline > now) continue;
      if (w.attempt >= this.settings.attempts) {
        this.waiting.delete(cookie);
        w.resolve({ ok: false, error: 'no reply', timedOut: true });
        continue;
      }
      w.attempt++;
      w.deadline = now + this.settings.timeoutMs;
      this.retransmissions++;
      this.socket.send(w.datagram);
    }
  }
}

function errorReason(body: Buffer): string {
  try {
    const reply = decode(body);
    if (!isDict(reply)) return 'reply is not a dictionary';
    return asText(reply['error-reason']) ?? `result ${asText(reply.result) ?? '?'}`;
  } catch (error) {
    return `undecodable reply: ${(error as Error).message}`;
  }
}

class ProjectClient implements LoadClient {
  readonly retransmissions = 0;
  private readonly client: NgClient;
  private readonly dicts: Record<CommandName, Record<string, BEncodable>> = {
    offer: commandDict('offer'),
    answer: commandDict('answer'),
    delete: commandDict('delete'),
  };

  constructor(settings: ClientSettings) {
    this.client = new NgClient({ host: HOST, port: settings.port, timeoutMs: settings.timeoutMs, attempts: settings.attempts });
  }

  async request(command: CommandName, callId: string): Promise<CommandReply> {
    try {
      const reply = await this.client.request({ ...this.dicts[command], 'call-id': callId });
      const result = asText(reply.result);
      if (result === 'ok') return { ok: true, timedOut: false };
      return { ok: false, error: asText(reply['error-reason']) ?? `result ${result ?? '?'}`, timedOut: false };
    } catch (error) {
      return { ok: false, error: (error as Error).message, timedOut: error instanceof NgTimeoutError };
    }
  }

  close(): void {
    this.client.close();
  }
}
