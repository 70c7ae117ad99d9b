/**
 * A small ng client over UDP: sends `<cookie> <bencode>` and resolves with the decoded reply,
 * retransmitting the identical datagram on timeout as Kamailio does. Used by `rtphub ctl`, the
 * tests and the benchmarks.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { BDict, BEncodable, decode, encode, isDict } from './bencode';

export class NgTimeoutError extends Error {}

interface Waiting {
  resolve(reply: BDict): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

export interface NgClientOptions {
  host: string;
  port: number;
  /** Per-attempt timeout (ms). */
  timeoutMs?: number;
  /** Attempts before giving up (the first one included). */
  attempts?: number;
}

export class NgClient {
  private readonly socket: dgram.Socket;
  private readonly waiting = new Map<string, Waiting>();
  private readonly prefix = randomBytes(4).toString('hex');
  private sequence = 0;

  constructor(private readonly options: NgClientOptions) {
    this.socket = dgram.createSocket(isIPv6(options.host) ? 'udp6' : 'udp4');
    this.socket.on('message', (msg) => this.onMessage(msg));
    this.socket.on('error', () => undefined);
    this.socket.unref();
  }

  /** Sends one command; resolves with the reply dictionary (any `result`). */
  request(command: Record<string, BEncodable>): Promise<BDict> {
    const cookie = `${this.prefix}_${++this.sequence}`;
    const datagram = Buffer.concat([Buffer.from(`${cookie} `), encode(command)]);
    const attempts = this.options.attempts ?? 3;
    const timeout = this.options.timeoutMs ?? 1000;
    return new Promise<BDict>((resolve, reject) => {
      let tries = 0;
      const send = (): void => {
        if (tries++ >= attempts) {
          this.waiting.delete(cookie);
          reject(new NgTimeoutError(`no reply from ${this.options.host}:${this.options.port} to ${String(command.command)}`));
          return;
        }
        const entry = this.waiting.get(cookie);
        if (!entry) return;
        this.socket.send(datagram, this.options.port, this.options.host);
        entry.timer = setTimeout(send, timeout);
      };
      this.waiting.set(cookie, { resolve, reject });
      this.socket.ref();
      send();
    }).finally(() => {
      if (this.waiting.size === 0) this.socket.unref();
    });
  }

  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error('client closed'));
    }
    this.waiting.clear();
    this.socket.close();
  }

  private onMessage(msg: Buffer): void {
    const space = msg.indexOf(0x20);
    if (space <= 0) return;
    const cookie = msg.toString('latin1', 0, space);
    const entry = this.waiting.get(cookie);
    if (!entry) return;
    this.waiting.delete(cookie);
    clearTimeout(entry.timer);
    try {
      const reply = decode(msg.subarray(space + 1));
      if (isDict(reply)) entry.resolve(reply);
      else entry.reject(new Error('reply is not a dictionary'));
    } catch (error) {
      entry.reject(error as Error);
    }
  }
}
