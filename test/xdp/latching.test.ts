// AF_XDP: endpoint learning and strict source behave as on the socket backends, and a stream
// exported, closed and imported again resumes forwarding on the same ports.
import { addresses } from './lab';
import { Party, rtpOf, setup, warmStream, warmUp, type StreamAddress, xdpTest } from './setup';

type Counters = { a: Record<string, number>; b: Record<string, number> };

xdpTest('immediate learning latches onto the real source; strict source then drops and counts a spoofer', async (t) => {
  const { relay, a, b } = await setup(t);
  const signalled = await Party.open(a, addresses.a, 41000);
  const real = await Party.open(a, addresses.a, 41010);
  const spoofer = await Party.open(a, addresses.a, 41020);
  const pb = await Party.open(b, addresses.b, 42000);
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: signalled.endpoint, learning: 'immediate', strictSource: true },
    b: { localAddress: addresses.rb, remote: pb.endpoint },
  });
  const legA = { address: s.a.address, port: s.a.port };
  const legB = { address: s.b.address, port: s.b.port };

  await warmUp(pb, legB, signalled, rtpOf(1, 'before learning: to the signalled port'));
  // The first packet from A locks the latch (and warms up the next hop towards B).
  await warmUp(real, legA, pb, rtpOf(2, 'from the real source'));
  await pb.send(legB, rtpOf(3, 'after learning'));
  t.deepEqual((await real.receive())[0]?.data, rtpOf(3, 'after learning'));
  t.is((await signalled.receive(1, 200)).length, 0);

  await spoofer.send(legA, rtpOf(4, 'spoofed'));
  t.is((await pb.receive(1, 300)).length, 0, 'the spoofed packet is not forwarded');
  const counters = await relay.call<Counters>('counters', { id: s.id });
  t.is(counters.a.drops_source, 1);
  const stats = await relay.call<Record<string, number>>('stats');
  t.is(stats.drops_source, 1);
  const learned = await relay.call<Array<{ streamId: number; leg: string; kind: string; endpoint: { address: string; port: number } }>>('learned');
  t.like(learned.find((e) => e.leg === 'a' && e.kind === 'rtp'), { streamId: s.id, endpoint: real.endpoint }, 'a learned event');
});

xdpTest('delayed learning follows the source until the window ends; asymmetric never learns', async (t) => {
  const { relay, a, b } = await setup(t, { relay: { learningWindowMs: 60_000 } });
  const first = await Party.open(a, addresses.a, 41000);
  const second = await Party.open(a, addresses.a, 41002);
  const pb = await Party.open(b, addresses.b, 42000);
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: null },
    b: { localAddress: addresses.rb, remote: pb.endpoint, asymmetric: true },
  });
  const legA = { address: s.a.address, port: s.a.port };
  const legB = { address: s.b.address, port: s.b.port };
  await warmUp(first, legA, pb, rtpOf(1, 'first'));
  await second.send(legA, rtpOf(2, 'second'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(2, 'second'));
  await warmUp(pb, legB, second, rtpOf(3, 'to the latest source'));
  t.is((await first.receive(1, 200)).length, 0);
  // B is asymmetric: a packet from another B port is accepted and B stays at its signalled port.
  const otherB = await Party.open(b, addresses.b, 42010);
  await otherB.send(legB, rtpOf(4, 'from elsewhere'));
  t.deepEqual((await second.receive())[0]?.data, rtpOf(4, 'from elsewhere'));
  await second.send(legA, rtpOf(5, 'back'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(5, 'back'));
  t.is((await otherB.receive(1, 200)).length, 0);
});

xdpTest('export, close and import resumes forwarding on the same ports', async (t) => {
  const env = await setup(t);
  const { relay } = env;
  const { pa, pb, stream: s, legA } = await warmStream(env, rtpOf(1, 'before'));
  const record = await relay.call<string>('exportStream', { id: s.id });
  await relay.call('closeStream', { id: s.id });
  await pa.send(legA, rtpOf(2, 'while closed'));
  t.is((await pb.receive(1, 300)).length, 0, 'a closed stream forwards nothing');
  const restored = await relay.call<StreamAddress>('importStream', { record });
  t.deepEqual(restored.a, s.a);
  t.deepEqual(restored.b, s.b);
  await pa.send(legA, rtpOf(3, 'after import'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(3, 'after import'));
});

xdpTest('a stream imported on standby forwards nothing until it is activated (takeover)', async (t) => {
  const env = await setup(t);
  const { relay } = env;
  const { pa, pb, stream: s, legA } = await warmStream(env, rtpOf(1, 'warm'));
  const record = await relay.call<string>('exportStream', { id: s.id });
  await relay.call('closeStream', { id: s.id });
  const standby = await relay.call<StreamAddress>('importStream', { record, standby: true });
  await pa.send(legA, rtpOf(2, 'on standby'));
  t.is((await pb.receive(1, 300)).length, 0);
  t.is((await relay.call<{ a: Record<string, number> }>('counters', { id: standby.id })).a.drops_standby, 1);
  await relay.call('activate', { id: standby.id });
  await pa.send(legA, rtpOf(3, 'active'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(3, 'active'));
});
