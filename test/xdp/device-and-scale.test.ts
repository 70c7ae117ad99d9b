// AF_XDP: a device that goes away and comes back (deleted and re-created under the same name) is
// taken up again; 50,000 calls live on one relay while its descriptor count stays flat, far under
// the open-file limit that bounds the socket backends; a UMEM beyond the locked-memory limit of a
// process without CAP_IPC_LOCK fails at start with a message naming the limit.
import { addresses, Lab } from './lab';
import { Party, rtpOf, setup, warmUp, type StreamAddress, xdpTest } from './setup';

xdpTest('forwarding resumes after the device is deleted and re-created', async (t) => {
  const { lab, relay, a, b } = await setup(t);
  const pb = await Party.open(b, addresses.b, 42000);
  let pa = await Party.open(a, addresses.a, 41000);
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: pa.endpoint, asymmetric: true },
    b: { localAddress: addresses.rb, remote: pb.endpoint },
  });
  const legA = { address: s.a.address, port: s.a.port };
  const legB = { address: s.b.address, port: s.b.port };
  await warmUp(pa, legA, pb, rtpOf(1, 'before'));
  await warmUp(pb, legB, pa, rtpOf(2, 'before'));

  await lab.exec('r', 'ip', ['link', 'del', 'xa']);
  await new Promise((r) => setTimeout(r, 700));
  await lab.addLink('a', 'xa', [addresses.ra], addresses.a);
  pa = await Party.open(a, addresses.a, 41002);
  // A's old socket lost its address with the device; the new one is where B's media now goes.
  await relay.call('update', { id: s.id, a: { remote: pa.endpoint } });
  await warmUp(pa, legA, pb, rtpOf(3, 'after, A to B'));
  await warmUp(pb, legB, pa, rtpOf(4, 'after, B to A'));
  const info = await relay.call<{ backendNote: string }>('info');
  t.regex(info.backendNote, /xa/);
  t.pass();
});

xdpTest('50,000 calls on one relay without a descriptor per port', async (t) => {
  t.timeout(180_000);
  const extra = { ra: ['10.77.1.3'], rb: ['10.77.2.3'] };
  const { relay, a, b } = await setup(t, { extra, relay: { portMin: 10000, portMax: 59999 } });
  const fdsBefore = await relay.call<number>('fds');
  const pa = await Party.open(a, addresses.a, 41000);
  const pb = await Party.open(b, addresses.b, 42000);
  const calls = 50_000;
  const last = await relay.call<StreamAddress>('createMany', {
    count: calls,
    a: [addresses.ra, ...extra.ra],
    b: [addresses.rb, ...extra.rb],
    template: { a: { remote: pa.endpoint }, b: { remote: pb.endpoint } },
  });
  const info = await relay.call<{ streams: number; portsInUse: number }>('info');
  t.is(info.streams, calls);
  t.is(info.portsInUse, calls * 2 * 2, 'two legs of an RTP/RTCP pair each');
  const fdsAfter = await relay.call<number>('fds');
  t.true(fdsAfter - fdsBefore < 20, `descriptors: ${fdsBefore} before, ${fdsAfter} with ${calls} calls`);
  await warmUp(pa, { address: last.a.address, port: last.a.port }, pb, rtpOf(1, 'through call 50,000'));
  await warmUp(pb, { address: last.b.address, port: last.b.port }, pa, rtpOf(2, 'and back'));
  t.log(`${calls} calls: ${fdsAfter} descriptors in the relay process`);
});

xdpTest('a UMEM beyond RLIMIT_MEMLOCK fails with a message naming the limit; one within it starts', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.destroy());
  // As a process without CAP_IPC_LOCK and an 8 MiB locked-memory limit, as on these machines.
  const relay = await lab.host('r', ['setpriv', '--bounding-set', '-ipc_lock', 'prlimit', '--memlock=8388608']);
  const options = { backend: 'af_xdp', interfaces: [addresses.ra, addresses.rb], portMin: 20000, portMax: 29999, threads: 1, xdpDevices: ['xa', 'xb'] };
  const error = await t.throwsAsync(relay.call('start', { ...options, xdpFrames: 8192 }));
  t.regex(error?.message ?? '', /registering the UMEM \(16384 KiB.*RLIMIT_MEMLOCK.*8192 KiB.*CAP_IPC_LOCK/);
  const info = await relay.call<{ backend: string }>('start', { ...options, xdpFrames: 2048 });
  t.is(info.backend, 'af_xdp');
});
