// Idle legs: with idleTimeoutMs set, a leg that has received nothing for that long is reported
// once by an `idle` event (how long it has been quiet included); a leg that keeps receiving is not.
import type { IdleEvent } from '../../src/native/types';
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, startRelay } from '../helpers/relay';
import { Party } from '../helpers/udp';
import { delay, nextEvent } from '../helpers/wait';

const ports = portBlock(11);
const idleTimeoutMs = 700;

backendTest('a leg that receives nothing is reported idle, a busy one is not', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { idleTimeoutMs });
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const events: IdleEvent[] = [];
  relay.on('idle', (event) => events.push(event));
  const created = Date.now();
  const stream = await connect(relay, a, b);

  const idle = nextEvent(relay, 'idle', (e) => e.streamId === stream.id && e.leg === 'b', 3000);
  let sending = true;
  const sender = (async () => {
    for (let seq = 0; sending; seq++) {
      await a.send(rtp({ seq }), legEndpoint(stream, 'a'));
      await delay(50);
    }
  })();
  try {
    const event = await idle;
    t.is(event.stream, stream);
    t.true(event.idleMs >= idleTimeoutMs, `idleMs ${event.idleMs} >= ${idleTimeoutMs}`);
    t.true(Date.now() - created >= idleTimeoutMs - 10, 'not before the timeout');
    // Leg a has been receiving all along: it must not be reported (the sweep that found b saw a too).
    t.deepEqual(
      events.filter((e) => e.streamId === stream.id).map((e) => e.leg),
      ['b'],
    );
  } finally {
    sending = false;
    await sender;
  }
});

backendTest('a leg that stops receiving becomes idle, counted from its last packet', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { idleTimeoutMs });
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  const idleA = nextEvent(relay, 'idle', (e) => e.streamId === stream.id && e.leg === 'a', 3000);
  // Keep leg a busy for a while after creation, so "since the last packet" differs from "since creation".
  const busyUntil = Date.now() + 500;
  let lastPacket = 0;
  for (let seq = 0; Date.now() < busyUntil; seq++) {
    await a.send(rtp({ seq }), legEndpoint(stream, 'a'));
    lastPacket = Date.now();
    await b.receive();
    await delay(50);
  }
  const event = await idleA;
  t.true(Date.now() - lastPacket >= idleTimeoutMs - 10, `reported ${Date.now() - lastPacket} ms after the last packet`);
  t.true(event.idleMs >= idleTimeoutMs);
  t.true(event.idleMs < idleTimeoutMs + 1000, `idleMs ${event.idleMs} counts from the last packet`);
});

backendTest('an idle leg is reported once per quiet spell', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20), { idleTimeoutMs });
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const stream = await connect(relay, a, b);
  const reports: IdleEvent[] = [];
  relay.on('idle', (event) => {
    if (event.streamId === stream.id && event.leg === 'a') reports.push(event);
  });
  await nextEvent(relay, 'idle', (e) => e.streamId === stream.id && e.leg === 'a', 3000);

  // A second stream created now goes idle a whole timeout later: by then several sweeps have
  // looked at the first stream's quiet leg again.
  const clock = await relay.createStream({ a: {}, b: {} });
  await nextEvent(relay, 'idle', (e) => e.streamId === clock.id, 3000);
  t.is(reports.length, 1, 'still quiet, not reported again');

  await a.send(rtp({ seq: 1 }), legEndpoint(stream, 'a'));
  await b.receive();
  await nextEvent(relay, 'idle', (e) => e.streamId === stream.id && e.leg === 'a', 3000);
  t.is(reports.length, 2, 'quiet again after a packet: reported again');
});
