/**
 * A minimal ng control client for setting up calls on rtpengine: `<cookie> <bencoded
 * dict>` datagrams over UDP, replies matched by cookie, each request retried a few
 * times and bounded in time. Bencode comes from the project's src/ng/bencode.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { asText, decode, encode, isDict, toPlain, type BDict, type BEncodable } from '../../src/ng/bencode';

const ATTEMPTS = 3;
const ATTEMPT_TIMEOUT_MS = 1000;

export class NgClient {
  private readonly socket: Socket;
  private readonly pending = new Map<string, (reply: BDict) => void>();
  private nextCookie = 1;

  private constructor(
    socket: Socket,
    private readonly port: number,
  ) {
    this.socket = socket;
    socket.on('message', (msg) => this.onMessage(msg));
  }

  static async connect(port: number): Promise<NgClient> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new NgClient(socket, port);
  }

  /** Sends one command; rejects after the last attempt times out or on result=error. */
  async request(command: Record<string, BEncodable>): Promise<BDict> {
    const cookie = `${process.pid}_${this.nextCookie++}`;
    const datagram = Buffer.concat([Buffer.from(`${cookie} `), encode(command)]);
    const reply = new Promise<BDict>((resolve) => this.pending.set(cookie, resolve));
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        this.socket.send(datagram, this.port, '127.0.0.1');
        const answer = await withTimeout(reply, ATTEMPT_TIMEOUT_MS);
        if (answer) return checkResult(command, answer);
      }
    } finally {
      this.pending.delete(cookie);
    }
    throw new Error(`ng ${String(command.command)}: no reply after ${ATTEMPTS} attempts`);
  }

  close(): void {
    this.socket.close();
  }

  private onMessage(msg: Buffer): void {
    const space = msg.indexOf(0x20);
    if (space <= 0) return;
    const resolve = this.pending.get(msg.subarray(0, space).toString());
    if (!resolve) return;
    try {
      const value = decode(msg.subarray(space + 1));
      if (isDict(value)) resolve(value);
    } catch {
      // a malformed reply is treated like a lost one and retried
    }
  }
}

function checkResult(command: Record<string, BEncodable>, reply: BDict): BDict {
  const result = asText(reply.result);
  if (result === 'ok' || result === 'pong') return reply;
  const reason = asText(reply['error-reason']) ?? JSON.stringify(toPlain(reply));
  throw new Error(`ng ${String(command.command)} failed: ${reason}`);
}

/** The promise's value, or null if it does not settle within `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
