// Stream.close(): forwarding stops, the sockets are closed and the ports go back to the pool
// (anyone may bind them again), other streams are untouched, and close is idempotent.
import { ClosedError } from '../../src/errors';
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, startRelay } from '../helpers/relay';
import { canBind, Party } from '../helpers/udp';
import { waitFor } from '../helpers/wait';

const ports = portBlock(4);

backendTest('closing a stream stops forwarding and frees its four ports', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const [a, b, c, d] = [await Party.open(t), await Party.open(t), await Party.open(t), await Party.open(t)];
  const doomed = await connect(relay, a, b);
  const survivor = await connect(relay, c, d);
  await a.send(rtp({ seq: 1 }), legEndpoint(doomed, 'a'));
  await b.receive();
  t.is(relay.info().portsInUse, 8);

  await doomed.close();
  t.true(doomed.closed);
  t.is(relay.info().portsInUse, 4);
  t.is(relay.info().streams, 1);
  const freed = [doomed.a.localPort, doomed.a.rtcpPort, doomed.b.localPort, doomed.b.rtcpPort];
  for (const port of freed) t.true(await canBind(port as number), `port ${port} can be bound again`);

  const received = relay.stats().packets_received;
  await a.send(rtp({ seq: 2 }), legEndpoint(doomed, 'a'));
  const alive = rtp({ seq: 3, ssrc: 0xc });
  await c.send(alive, legEndpoint(survivor, 'a'));
  t.deepEqual((await d.receive()).data, alive, 'the other stream still forwards');
  t.is(relay.stats().packets_received, received + 1, 'the closed stream received nothing');
  t.is(b.pending, 0);
});

backendTest('closing muxed legs frees the whole port pair of each leg', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: { rtcpMux: true }, b: { rtcpMux: true } });
  t.is(relay.info().portsInUse, 4, 'a muxed leg still reserves its pair');
  await stream.close();
  t.is(relay.info().portsInUse, 0);
  for (const port of [stream.a.localPort, stream.a.localPort + 1, stream.b.localPort, stream.b.localPort + 1]) {
    t.true(await canBind(port), `port ${port} can be bound again`);
  }
  await waitFor(() => relay.stats().sockets === 0 && relay.stats().streams === 0, 'the workers to drop the stream');
});

backendTest('close is idempotent and a closed stream refuses update and export', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const stream = await relay.createStream({ a: {}, b: {} });
  const first = stream.close();
  t.is(stream.close(), first, 'a second close returns the same promise');
  await first;
  await stream.close();
  await t.throwsAsync(stream.update({ a: { remote: null } }), { instanceOf: ClosedError });
  await t.throwsAsync(stream.export(), { instanceOf: ClosedError });
  t.is(relay.info().portsInUse, 0);
});

backendTest('freed ports are handed out again', async (t, backend) => {
  // Room for exactly one stream: two port pairs.
  const relay = startRelay(t, backend, ports.take(4));
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const first = await connect(relay, a, b);
  await first.close();
  const second = await connect(relay, a, b);
  t.deepEqual([second.a.localPort, second.b.localPort].sort(), [first.a.localPort, first.b.localPort].sort());
  const packet = rtp({ seq: 1 });
  await a.send(packet, legEndpoint(second, 'a'));
  t.deepEqual((await b.receive()).data, packet);
});

backendTest('closing many streams at once frees every port', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(200));
  const streams = await Promise.all(Array.from({ length: 50 }, () => relay.createStream({ a: {}, b: {} })));
  t.is(relay.info().portsInUse, 200);
  await Promise.all(streams.map((s) => s.close()));
  t.is(relay.info().portsInUse, 0);
  t.is(relay.info().streams, 0);
  await waitFor(() => relay.stats().sockets === 0, 'every socket closed');
});
