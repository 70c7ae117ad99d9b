/**
 * The benchmarks' side of the ng protocol, on the project's own client (src/ng/client.ts):
 * requests that must succeed, a loopback port for a relay's ng socket, and the wait for a
 * freshly started relay's first pong.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { asText, toPlain, type BDict, type BEncodable } from '../../src/ng/bencode';
import { NgClient } from '../../src/ng/client';
import type { GuardedChild } from './child';

/** ng requests to 127.0.0.1:`port` that reject unless the reply says ok (or pong). */
export class CheckedNgClient {
  private readonly client: NgClient;

  constructor(port: number) {
    this.client = new NgClient({ host: '127.0.0.1', port, timeoutMs: 1000, attempts: 3 });
  }

  async request(command: Record<string, BEncodable>): Promise<BDict> {
    const reply = await this.client.request(command);
    const result = asText(reply.result);
    if (result === 'ok' || result === 'pong') return reply;
    const reason = asText(reply['error-reason']) ?? JSON.stringify(toPlain(reply));
    throw new Error(`ng ${String(command.command)} failed: ${reason}`);
  }

  close(): void {
    this.client.close();
  }
}

/** A loopback UDP port that was free a moment ago (for a relay's ng or SIP socket). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}

/** Pings until the relay answers or `timeoutMs` passes; fails at once if the relay exits. */
export async function waitForPong(
  ng: { request(command: Record<string, BEncodable>): Promise<unknown> },
  child: GuardedChild,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw child.failure('exited during startup');
    try {
      await ng.request({ command: 'ping' });
      return;
    } catch {
      // not listening yet
    }
  }
  throw child.failure(`no ng pong within ${timeoutMs} ms`);
}
