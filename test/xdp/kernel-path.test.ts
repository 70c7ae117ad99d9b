// AF_XDP: what is not the relay's media still reaches the kernel (ARP, ICMP, TCP even to a port
// inside the range, a kernel UDP socket such as the ng socket on a port outside it, fragments), and bad frames sent raw onto
// the wire (bad IP checksum, lengths that disagree, truncated headers) are counted drops, never
// a crash; a frame with IP options is parsed correctly and forwarded.
import { addresses } from './lab';
import { Party, portMax, portMin, rtpOf, setup, warmStream, warmUp, type StreamAddress, xdpTest } from './setup';

xdpTest('ARP, ping and TCP work, a kernel UDP socket outside the range gets its datagrams, an unused port in the range is a counted drop', async (t) => {
  const { lab, relay, a, b } = await setup(t);
  await lab.exec('r', 'ip', ['neigh', 'flush', 'all']);
  const ping = await lab.exec('a', 'ping', ['-c', '2', '-i', '0.2', '-W', '2', addresses.ra]);
  t.regex(ping, /2 received/);
  const neighbours = await lab.exec('a', 'ip', ['neigh', 'show', addresses.ra]);
  t.regex(neighbours, /lladdr/, 'A resolved the relay by ARP');

  // TCP to a port inside the media range is not the relay's media: the kernel takes it.
  await relay.call('tcpListen', { address: addresses.ra, port: portMin + 10, reply: 'kernel TCP' });
  t.is(await a.call<string>('tcpFetch', { address: addresses.ra, port: portMin + 10 }), 'kernel TCP');

  const ng = await Party.open(relay, addresses.ra, 2223);
  const pa = await Party.open(a, addresses.a, 41000);
  await pa.send(ng.endpoint, Buffer.from('d7:command4:pinge'));
  t.deepEqual((await ng.receive())[0]?.data, Buffer.from('d7:command4:pinge'), 'the kernel socket got it');

  const before = await relay.call<Record<string, number>>('stats');
  await pa.send({ address: addresses.ra, port: 20100 }, rtpOf(1, 'nobody here'));
  await new Promise((r) => setTimeout(r, 200));
  const after = await relay.call<Record<string, number>>('stats');
  t.is(after.drops_stale - before.drops_stale, 1);
  const reserved = await lab.exec('r', 'cat', ['/proc/sys/net/ipv4/ip_local_reserved_ports']);
  t.is(reserved.trim(), `${portMin}-${portMax}`, 'no ephemeral port of the range goes to a kernel socket');

  // A datagram larger than the MTU arrives in fragments: the program passes them to the kernel,
  // which reassembles it (and, with no socket on the port, drops it); the relay is unaffected.
  const pb = await Party.open(b, addresses.b, 42000);
  const s = await relay.call<StreamAddress>('create', {
    a: { localAddress: addresses.ra, remote: pa.endpoint },
    b: { localAddress: addresses.rb, remote: pb.endpoint },
  });
  const legA = { address: s.a.address, port: s.a.port };
  await pa.send(legA, Buffer.alloc(4000, 0x80));
  t.is((await pb.receive(1, 300)).length, 0);
  await warmUp(pa, legA, pb, rtpOf(2, 'still forwarding'));
  t.pass();
});

// Raw frames from A's eth0 to the relay's xa, built here byte by byte.
const rawSender = `
import socket, struct, sys, json
spec = json.loads(sys.stdin.read())
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def ip4(a): return socket.inet_aton(a)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
eth = bytes.fromhex(spec['dst'].replace(':', '')) + bytes.fromhex(spec['src'].replace(':', '')) + b'\\x08\\x00'
for f in spec['frames']:
    payload = bytes.fromhex(f['payload'])
    options = bytes.fromhex(f.get('options', ''))
    udp_len = f.get('udp_len', 8 + len(payload))
    udp = struct.pack('!HHHH', spec['sport'], spec['dport'], udp_len, 0) + payload
    ihl = 5 + len(options) // 4
    total = f.get('total', ihl * 4 + len(udp))
    hdr = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, total, 1, 0, 64, 17, 0, ip4(spec['saddr']), ip4(spec['daddr'])) + options
    c = csum(hdr)
    if f.get('bad_ip_checksum'): c ^= 0x5555
    hdr = hdr[:10] + struct.pack('!H', c) + hdr[12:]
    frame = eth + hdr + udp
    frame = frame[:f['cut']] if 'cut' in f else frame
    s.send(frame)
if 'mutations' in spec:
    import random
    rng = random.Random(spec['seed'])
    f = spec['frames'][0]
    payload = bytes.fromhex(f['payload'])
    udp = struct.pack('!HHHH', spec['sport'], spec['dport'], 8 + len(payload), 0) + payload
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip4(spec['saddr']), ip4(spec['daddr']))
    hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
    base = bytearray(eth + hdr + udp)
    for _ in range(spec['mutations']):
        frame = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(14, len(frame))  # keep the Ethernet header: it must reach xa
            frame[i] = rng.randrange(256)
        if rng.random() < 0.3:
            frame = frame[:rng.randint(14, len(frame))]
        s.send(bytes(frame))
`;

xdpTest('garbage frames are counted drops; a frame with IP options is forwarded intact', async (t) => {
  const env = await setup(t);
  const { lab, relay } = env;
  const { pa, pb, stream: s, legA } = await warmStream(env, rtpOf(1, 'warm'));
  const before = await relay.call<Record<string, number>>('stats');
  const payload = rtpOf(7, 'with IP options').toString('hex');
  const spec = {
    dst: await lab.mac('r', 'xa'),
    src: await lab.mac('a', 'eth0'),
    saddr: addresses.a,
    daddr: addresses.ra,
    sport: 41000,
    dport: s.a.port,
    frames: [
      { payload, bad_ip_checksum: true },
      { payload, udp_len: 400 },
      { payload, total: 1000 },
      { payload, udp_len: 3 },
      { payload, cut: 40 },
      { payload: '' },
      { payload, options: '01010100' }, // NOP NOP NOP EOL: 4 bytes of options, ihl 6
    ],
  };
  await lab.exec('a', 'python3', ['-c', rawSender], JSON.stringify(spec));
  const got = await pb.receive(2, 1000);
  t.is(got.length, 2, 'the empty datagram and the one with IP options');
  t.deepEqual(got[0]?.data, Buffer.alloc(0));
  t.deepEqual(got[1]?.data, rtpOf(7, 'with IP options'));
  const after = await relay.call<Record<string, number>>('stats');
  t.is(after.drops_malformed - before.drops_malformed, 4, 'bad checksum, UDP length too long, IP length too long, UDP length too short');
  await pa.send(legA, rtpOf(8, 'still alive'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(8, 'still alive'));
});

xdpTest('2,000 randomly mutated frames (seeded) leave the relay counting and forwarding', async (t) => {
  const env = await setup(t);
  const { lab, relay } = env;
  const { pa, pb, stream: s, legA } = await warmStream(env, rtpOf(1, 'warm'));
  const spec = {
    dst: await lab.mac('r', 'xa'),
    src: await lab.mac('a', 'eth0'),
    saddr: addresses.a,
    daddr: addresses.ra,
    sport: 41000,
    dport: s.a.port,
    frames: [{ payload: rtpOf(5, 'mutate me').toString('hex') }],
    mutations: 2000,
    seed: 8,
  };
  await lab.exec('a', 'python3', ['-c', rawSender], JSON.stringify(spec));
  await new Promise((r) => setTimeout(r, 300));
  const stats = await relay.call<Record<string, number>>('stats');
  t.true(stats.drops_malformed > 0, 'some mutations are counted as malformed');
  t.true(stats.packets_received + stats.drops_malformed + stats.drops_stale <= 2000 + 1 + 50, 'nothing counted twice');
  await pb.receive(3000, 300);
  await pa.send(legA, rtpOf(9, 'still forwarding'));
  t.deepEqual((await pb.receive())[0]?.data, rtpOf(9, 'still forwarding'));
  t.log(`received ${stats.packets_received}, malformed ${stats.drops_malformed}, other ports ${stats.drops_stale}`);
});
