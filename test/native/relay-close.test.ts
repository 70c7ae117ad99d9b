// Relay.close(): in the middle of traffic, or while streams are still being created, it
// resolves, joins its worker threads, leaves no descriptor behind and frees every port at once.
// Serial: the checks count this process's descriptors and threads.
import { ClosedError } from '../../src/errors';
import type { Stream } from '../../src/native/relay';
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, startRelay } from '../helpers/relay';
import { openDescriptors, threadCount } from '../helpers/resources';
import { canBind, Party } from '../helpers/udp';
import { delay, waitFor } from '../helpers/wait';

const ports = portBlock(15);

/** Settles `promise` or fails after `ms`, so a hanging close fails the test instead of ava's timeout. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

backendTest.serial('closing the relay during traffic resolves, leaves no descriptor and frees every port', async (t, backend) => {
  const parties = await Promise.all(Array.from({ length: 2 }, () => Party.open(t)));
  const [a, b] = parties;
  const descriptors = openDescriptors();
  const threads = threadCount();

  const relay = startRelay(t, backend, ports.take(100));
  const streams: Stream[] = [];
  for (let i = 0; i < 20; i++) streams.push(await connect(relay, a, b));
  t.true(openDescriptors() > descriptors, 'the relay holds descriptors while running');

  let sending = true;
  let sent = 0;
  const sender = (async () => {
    while (sending) {
      for (const stream of streams) {
        a.send(rtp({ seq: sent & 0xffff }), legEndpoint(stream, 'a')).catch(() => undefined);
        b.send(rtp({ seq: sent & 0xffff }), legEndpoint(stream, 'b')).catch(() => undefined);
        sent++;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  try {
    await waitFor(() => relay.stats().packets_forwarded > 500, 'traffic to flow');
    await within(relay.close(), 5000, 'relay.close()');
    t.true(streams.every((s) => s.closed));
    for (const stream of streams) {
      for (const port of [stream.a.localPort, stream.a.localPort + 1, stream.b.localPort, stream.b.localPort + 1]) {
        t.true(await canBind(port), `port ${port} is free as soon as close() resolved`);
      }
    }
  } finally {
    sending = false;
    await sender;
  }
  t.true(sent > 0);
  t.is(openDescriptors(), descriptors, 'no descriptor left behind');
  t.is(threadCount(), threads, 'the worker threads were joined');
});

backendTest.serial('closing the relay while streams are being created settles every create', async (t, backend) => {
  const descriptors = openDescriptors();
  const relay = startRelay(t, backend, ports.take(200));
  const creating = Array.from({ length: 40 }, () => relay.createStream({ a: {}, b: {} }));
  await delay(0);
  await within(relay.close(), 5000, 'relay.close()');
  const outcomes = await within(Promise.allSettled(creating), 5000, 'the pending creates');
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') t.true(outcome.value.closed, 'a created stream was closed with the relay');
    else t.true(outcome.reason instanceof ClosedError, String(outcome.reason));
  }
  t.is(openDescriptors(), descriptors);
});

backendTest.serial('starting and closing relays repeatedly leaks no descriptor or thread', async (t, backend) => {
  const range = ports.take(20);
  const descriptors = openDescriptors();
  const threads = threadCount();
  for (let round = 0; round < 20; round++) {
    const relay = startRelay(t, backend, range);
    const stream = await relay.createStream({ a: {}, b: {} });
    if (round % 2 === 0) await stream.close();
    await relay.close();
  }
  t.is(openDescriptors(), descriptors);
  t.is(threadCount(), threads);
});
