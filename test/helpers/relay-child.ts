/**
 * Child-process side of test/native/child-process.test.ts. Starts a relay with live streams and
 * keeps RTP flowing through them, tells the parent its ports, then, by mode:
 *  - `close-on-sigterm`: on SIGTERM stops its traffic, awaits relay.close() and simply ends (the
 *    IPC channel is unref'd, so only the relay could keep the process alive);
 *  - `exit-without-close`: on the parent's "exit" message calls process.exit(0) with the relay
 *    and the traffic still live (the addon's environment cleanup hook must not hang).
 * Usage: node --import tsx relay-child.ts <mode> <backend> <portMin> <portMax>
 */
import dgram from 'node:dgram';
import { Relay, type Stream } from '../../src/native/relay';
import type { BackendName, Endpoint } from '../../src/native/types';

export type ChildMode = 'close-on-sigterm' | 'exit-without-close';
export type ChildMessage = { type: 'ready'; ports: number[]; forwarded: number } | { type: 'error'; message: string };

const streamCount = 8;

function bind(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });
}

async function main(): Promise<void> {
  const [mode, backend, portMin, portMax] = process.argv.slice(2) as [ChildMode, BackendName, string, string];
  const send = (message: ChildMessage): void => void process.send?.(message);
  process.channel?.unref();
  const relay = Relay.start({ backend, portMin: Number(portMin), portMax: Number(portMax), threads: 2 });
  const [a, b] = [await bind(), await bind()];
  let forwarded = 0;
  b.on('message', () => forwarded++);
  const remote = (s: dgram.Socket): Endpoint => ({ address: '127.0.0.1', port: s.address().port });
  const streams: Stream[] = [];
  for (let i = 0; i < streamCount; i++) streams.push(await relay.createStream({ a: { remote: remote(a) }, b: { remote: remote(b) } }));

  const packet = Buffer.alloc(172, 0x80);
  const traffic = setInterval(() => {
    for (const stream of streams) a.send(packet, stream.a.localPort, '127.0.0.1');
  }, 5);
  while (forwarded < streamCount) await new Promise((resolve) => setTimeout(resolve, 5));

  if (mode === 'close-on-sigterm') {
    process.on('SIGTERM', () => {
      clearInterval(traffic);
      a.close();
      b.close();
      void relay.close();
    });
  } else {
    process.on('message', (message) => {
      if (message === 'exit') process.exit(0);
    });
    process.channel?.ref();
  }
  send({ type: 'ready', ports: streams.flatMap((s) => [s.a.localPort, s.b.localPort]), forwarded });
}

main().catch((error: unknown) => {
  process.send?.({ type: 'error', message: String(error) });
  process.exitCode = 2;
});
