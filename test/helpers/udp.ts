/**
 * The parties of a call, as plain UDP sockets on loopback: each one queues what it receives
 * so a test can wait for the next datagram with a deadline instead of sleeping, and knows the
 * endpoint the relay should see it as. Every socket is closed by the test's teardown.
 */
import dgram from 'node:dgram';
import type { ExecutionContext } from 'ava';
import type { Endpoint } from '../../src/native/types';

export interface Datagram {
  data: Buffer;
  from: Endpoint;
}

type Waiter = { resolve(d: Datagram): void; timer: NodeJS.Timeout };

export class Party {
  private readonly queue: Datagram[] = [];
  private readonly waiters: Waiter[] = [];
  private closed = false;

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (data, rinfo) => {
      const datagram = { data, from: { address: rinfo.address, port: rinfo.port } };
      const waiter = this.waiters.shift();
      if (!waiter) {
        this.queue.push(datagram);
        return;
      }
      clearTimeout(waiter.timer);
      waiter.resolve(datagram);
    });
    // ICMP port-unreachable from a closed relay port surfaces here on Linux; it is not an error for a test.
    socket.on('error', () => undefined);
  }

  /** Binds a party socket (port 0: an ephemeral port) and closes it when the test ends. */
  static async open(t: ExecutionContext, address = '127.0.0.1', port = 0): Promise<Party> {
    const party = await Party.bind(address, port);
    t.teardown(() => party.close());
    return party;
  }

  /** Binds without registering a teardown; the caller closes it. Rejects if the port is taken. */
  static bind(address = '127.0.0.1', port = 0): Promise<Party> {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', (error) => {
        socket.close();
        reject(error);
      });
      socket.bind(port, address, () => {
        socket.removeAllListeners('error');
        resolve(new Party(socket));
      });
    });
  }

  get endpoint(): Endpoint {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  get address(): string {
    return this.socket.address().address;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Datagrams received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Sends to `port` on this party's own address, or to an endpoint. Node usually completes a UDP
   * send synchronously, so a loop of awaited sends never lets it read: pace long bursts (see
   * malformed-datagrams.test.ts) or the parties' own receive buffers overflow.
   */
  send(data: Uint8Array, to: number | Endpoint): Promise<void> {
    const { address, port } = typeof to === 'number' ? { address: this.address, port: to } : to;
    return new Promise((resolve, reject) => this.socket.send(data, port, address, (error) => (error ? reject(error) : resolve())));
  }

  /** The next datagram, or a rejection after `timeoutMs`. */
  receive(timeoutMs = 2000): Promise<Datagram> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`party ${this.address}:${this.port}: no datagram within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Throws away what was received so far. */
  discard(): void {
    this.queue.length = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) clearTimeout(waiter.timer);
    this.socket.close();
  }
}

/** The next datagram `party` receives, or a rejection after `timeoutMs`. */
export function receive(party: Party, timeoutMs = 2000): Promise<Datagram> {
  return party.receive(timeoutMs);
}

/** A party with an RTP socket on port P and an RTCP socket on P + 1, as SDP without a=rtcp implies. */
export interface PartyPair {
  rtp: Party;
  rtcp: Party;
}

export async function openPartyPair(t: ExecutionContext, address = '127.0.0.1'): Promise<PartyPair> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const rtp = await Party.bind(address, 0);
    if (rtp.port >= 65535) {
      rtp.close();
      continue;
    }
    try {
      const rtcp = await Party.bind(address, rtp.port + 1);
      t.teardown(() => {
        rtp.close();
        rtcp.close();
      });
      return { rtp, rtcp };
    } catch {
      rtp.close();
    }
  }
  throw new Error(`could not bind two consecutive UDP ports on ${address}`);
}

/** Whether this process can bind `port` on `address` right now (the socket is closed again). */
export async function canBind(port: number, address = '127.0.0.1'): Promise<boolean> {
  try {
    const party = await Party.bind(address, port);
    party.close();
    return true;
  } catch {
    return false;
  }
}

/** Which of `parties` receives a datagram first (the queues are polled, no receive is left waiting). */
export async function firstToReceive(parties: Party[], timeoutMs = 2000): Promise<{ party: Party; datagram: Datagram }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() <= deadline) {
    const party = parties.find((p) => p.pending > 0);
    if (party) return { party, datagram: await party.receive(0) };
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`none of ${parties.length} parties received a datagram within ${timeoutMs} ms`);
}
