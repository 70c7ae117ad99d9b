// NgServer over real UDP and TCP sockets on 127.0.0.1 ephemeral ports, with a stub handler:
// ping, retransmissions answered from the cache, malformed input, ordering on TCP, close.
import test from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { BEncodable, decode, encode, toPlain } from '../../src/ng/bencode';
import { NgRequestError } from '../../src/ng/errors';
import { NgReplyDict } from '../../src/ng/message';
import { NgRequest } from '../../src/ng/request';
import { NgHandler, NgServer, NgServerEvent } from '../../src/ng/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Harness {
  server: NgServer;
  calls: NgRequest[];
  events: NgServerEvent[];
  udpPort: number;
  tcpPort: number;
}

async function start(handler?: NgHandler): Promise<Harness> {
  const calls: NgRequest[] = [];
  const events: NgServerEvent[] = [];
  const server = new NgServer({
    listenNg: '127.0.0.1:0',
    listenTcpNg: '127.0.0.1:0',
    handler: async (req, ctx) => {
      calls.push(req);
      return handler ? handler(req, ctx) : { result: 'ok', 'call-id': req.callId };
    },
    onEvent: (e) => events.push(e),
  });
  await server.listen();
  const { udp, tcp } = server.addresses();
  return { server, calls, events, udpPort: udp?.port ?? 0, tcpPort: tcp?.port ?? 0 };
}

/** A UDP controller: sends datagrams, collects replies by cookie. */
class UdpClient {
  readonly socket = dgram.createSocket('udp4');
  readonly replies: Buffer[] = [];

  constructor(private readonly port: number) {
    this.socket.on('message', (m) => this.replies.push(m));
  }

  send(data: Buffer | string): void {
    this.socket.send(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, this.port, '127.0.0.1');
  }

  async waitFor(n: number, timeoutMs = 3000): Promise<Buffer[]> {
    const until = Date.now() + timeoutMs;
    while (this.replies.length < n && Date.now() < until) await sleep(5);
    return this.replies;
  }

  close(): void {
    this.socket.close();
  }
}

const message = (cookie: string, dict: BEncodable): Buffer => Buffer.concat([Buffer.from(`${cookie} `), encode(dict)]);

function parseReply(reply: Buffer): { cookie: string; dict: Record<string, unknown> } {
  const space = reply.indexOf(0x20);
  const body = reply.subarray(space + 1);
  const dict = body[0] === 0x7b ? JSON.parse(body.toString()) : toPlain(decode(body));
  return { cookie: reply.toString('latin1', 0, space), dict };
}

test('UDP: ping is answered pong by the server itself', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send('5323_1 d7:command4:pinge');
  const [reply] = await c.waitFor(1);
  t.is(reply.toString(), '5323_1 d6:result4:ponge');
  t.is(h.calls.length, 0);
  c.close();
  await h.server.close();
});

test('UDP: a JSON request gets a JSON reply', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send('j1 {"command":"ping"}');
  const [reply] = await c.waitFor(1);
  t.is(reply.toString(), 'j1 {"result":"pong"}');
  c.close();
  await h.server.close();
});

test('UDP: requests reach the handler normalised, replies carry the handler result', async (t) => {
  const h = await start(async (req) => ({ result: 'ok', sdp: Buffer.concat([req.sdp ?? Buffer.alloc(0), Buffer.from('!')]) }));
  const c = new UdpClient(h.udpPort);
  c.send(message('o1', { command: 'offer', 'call-id': 'abc', 'from-tag': 'ft', sdp: 'v=0\r\n', flags: ['trust address'] }));
  const [reply] = await c.waitFor(1);
  t.deepEqual(parseReply(reply), { cookie: 'o1', dict: { result: 'ok', sdp: 'v=0\r\n!' } });
  t.is(h.calls.length, 1);
  t.is(h.calls[0].callId, 'abc');
  t.deepEqual(h.calls[0].flags, ['trust-address']);
  c.close();
  await h.server.close();
});

test('UDP: a retransmission gets the cached reply and the handler runs once', async (t) => {
  let n = 0;
  const h = await start(async () => {
    await sleep(100);
    return { result: 'ok', n: ++n };
  });
  const c = new UdpClient(h.udpPort);
  const m = message('r1', { command: 'delete', 'call-id': 'x' });
  c.send(m);
  await sleep(20);
  c.send(m); // arrives while the first is still running
  await c.waitFor(2);
  c.send(m); // arrives after the reply was sent
  const replies = await c.waitFor(3);
  t.is(replies.length, 3);
  for (const r of replies) t.deepEqual(parseReply(r).dict, { result: 'ok', n: 1 });
  t.is(h.calls.length, 1);
  t.is(h.server.counters.duplicates, 2);
  t.is(h.server.counters.commands.delete.count, 1);
  c.close();
  await h.server.close();
});

test('UDP: a new cookie runs the command again', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send(message('a1', { command: 'query', 'call-id': 'x' }));
  c.send(message('a2', { command: 'query', 'call-id': 'x' }));
  await c.waitFor(2);
  t.is(h.calls.length, 2);
  c.close();
  await h.server.close();
});

test('UDP: malformed input gets error replies with rtpengine\'s reasons, no-cookie gets none', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  const cases: Array<[string, string]> = [
    ['m1 xyz', 'Invalid NG data format'],
    ['m2 ', 'Invalid data (no payload)'],
    ['m3 d7:command', 'Could not decode bencode dictionary'],
    ['m4 d3:fooi1ee', 'Dictionary contains no key "command"'],
    ['m5 d7:command5:dancee', 'Unrecognized command'],
    ['m6 {"command":', 'Failed to parse JSON document'],
    ['m7 d7:command5:query7:call-idi5ee', 'Wrong type for key "call-id": expected a string'],
    ['m8 d7:command5:offere', 'No SDP body in message'],
  ];
  c.send('nocookie');
  for (const [data] of cases) c.send(data);
  const replies = await c.waitFor(cases.length);
  await sleep(50);
  t.is(replies.length, cases.length, 'the message without a cookie got no reply');
  const byCookie = new Map(replies.map((r) => [parseReply(r).cookie, parseReply(r).dict]));
  for (const [data, reason] of cases) {
    t.deepEqual(byCookie.get(data.split(' ')[0]), { result: 'error', 'error-reason': reason }, data);
  }
  t.is(h.calls.length, 0);
  const counters = h.server.counters;
  t.is(counters.received, cases.length + 1);
  t.is(counters.replied, cases.length);
  t.is(counters.dropped, 1);
  t.is(counters.errors['Invalid NG data format'], 1);
  t.is(counters.errors['No cookie in message'], 1);
  t.is(counters.commands.invalid.errors, 6);
  t.is(counters.commands.offer.errors, 1);
  c.close();
  await h.server.close();
});

test('UDP: a huge garbage datagram gets an error reply', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send(Buffer.concat([Buffer.from('big d3:sdp60000:'), Buffer.alloc(50000, 0x41)]));
  const [reply] = await c.waitFor(1);
  t.deepEqual(parseReply(reply).dict, { result: 'error', 'error-reason': 'Could not decode bencode dictionary' });
  c.close();
  await h.server.close();
});

test('UDP: handler errors become error replies and events, never a crash', async (t) => {
  const h = await start(async (req) => {
    if (req.callId === 'refuse') throw new NgRequestError('Unknown call-id');
    if (req.callId === 'bug') throw new TypeError('oops');
    if (req.callId === 'bad-reply') return { nope: 1 } as unknown as NgReplyDict;
    if (req.callId === 'unencodable') return { result: 'ok', x: 1.5 };
    return { result: 'ok' };
  });
  const c = new UdpClient(h.udpPort);
  for (const id of ['refuse', 'bug', 'bad-reply', 'unencodable']) c.send(message(id, { command: 'query', 'call-id': id }));
  const replies = await c.waitFor(4);
  const byCookie = new Map(replies.map((r) => [parseReply(r).cookie, parseReply(r).dict]));
  t.deepEqual(byCookie.get('refuse'), { result: 'error', 'error-reason': 'Unknown call-id' });
  t.deepEqual(byCookie.get('bug'), { result: 'error', 'error-reason': 'Internal error' });
  t.deepEqual(byCookie.get('bad-reply'), { result: 'error', 'error-reason': 'Internal error' });
  t.deepEqual(byCookie.get('unencodable'), { result: 'error', 'error-reason': 'Failed to encode reply' });
  t.true(h.events.some((e) => e.level === 'error' && e.error instanceof TypeError));
  c.close();
  await h.server.close();
});

test('UDP: unknown flags reach the handler with warnings', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send(message('w1', { command: 'query', 'call-id': 'x', flags: ['teleport'] }));
  await c.waitFor(1);
  t.deepEqual(h.calls[0].warnings, ['Unknown flag "teleport"']);
  t.is(h.server.counters.warnings, 1);
  c.close();
  await h.server.close();
});

/** A TCP controller: writes raw bytes, reads replies as they come. */
async function tcpConnect(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<unknown> }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let data = '';
  socket.on('data', (d) => (data += d.toString('latin1')));
  const closed = once(socket, 'close');
  return { socket, received: () => data, closed };
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond() && Date.now() < end) await sleep(5);
}

test('TCP: back-to-back and split messages are answered, in request order', async (t) => {
  const h = await start(async (req) => {
    await sleep(req.callId === 'slow' ? 80 : 1);
    return { result: 'ok', id: req.callId };
  });
  const c = await tcpConnect(h.tcpPort);
  const slow = message('t1', { command: 'query', 'call-id': 'slow' });
  const fast = message('t2', { command: 'query', 'call-id': 'fast' });
  c.socket.write(Buffer.concat([slow, fast]));
  const split = message('t3', { command: 'ping' });
  c.socket.write(split.subarray(0, 7));
  await sleep(30);
  c.socket.write(split.subarray(7));
  const expected =
    't1 d6:result2:ok2:id4:slowe' + 't2 d6:result2:ok2:id4:faste' + 't3 d6:result4:ponge';
  await until(() => c.received().length >= expected.length);
  t.is(c.received(), expected);
  t.is(h.server.counters.tcpConnections, 1);
  c.socket.destroy();
  await h.server.close();
});

test('TCP: a retransmission on the stream is answered from the cache', async (t) => {
  const h = await start();
  const c = await tcpConnect(h.tcpPort);
  const m = message('d1', { command: 'query', 'call-id': 'x' });
  c.socket.write(Buffer.concat([m, m]));
  const one = 'd1 d6:result2:ok7:call-id1:xe';
  await until(() => c.received().length >= 2 * one.length);
  t.is(c.received(), one + one);
  t.is(h.calls.length, 1);
  c.socket.destroy();
  await h.server.close();
});

test('TCP: malformed input gets an error reply and the connection is closed', async (t) => {
  const h = await start();
  const c = await tcpConnect(h.tcpPort);
  c.socket.write('g1 d7:command4:pingeg2 garbage');
  await c.closed;
  t.is(c.received(), 'g1 d6:result4:ponge' + 'g2 d6:result5:error12:error-reason22:Invalid NG data formate');
  await until(() => h.server.counters.tcpConnections === 0);
  t.is(h.server.counters.tcpConnections, 0);
  t.is(h.server.counters.errors['Invalid NG data format'], 1);
  await h.server.close();
});

test('close() is idempotent and stops answering', async (t) => {
  const h = await start();
  await Promise.all([h.server.close(), h.server.close()]);
  await h.server.close();
  const c = new UdpClient(h.udpPort);
  c.send('late d7:command4:pinge');
  await sleep(100);
  t.is(c.replies.length, 0);
  c.close();
  await t.throwsAsync(h.server.listen());
});

test('close() with a request in flight drops its reply quietly', async (t) => {
  const h = await start(async () => {
    await sleep(100);
    return { result: 'ok' };
  });
  const c = new UdpClient(h.udpPort);
  c.send(message('f1', { command: 'query', 'call-id': 'x' }));
  await sleep(30);
  await h.server.close();
  await sleep(120);
  t.is(c.replies.length, 0);
  t.false(h.events.some((e) => e.level === 'error'));
  c.close();
});

test('stats counters are a plain object the metrics module can read', async (t) => {
  const h = await start();
  const c = new UdpClient(h.udpPort);
  c.send('s1 d7:command4:pinge');
  await c.waitFor(1);
  const snapshot = JSON.parse(JSON.stringify(h.server.counters));
  t.is(snapshot.received, 1);
  t.is(snapshot.commands.ping.count, 1);
  t.is(snapshot.commands.ping.latencyBuckets.length, snapshot.latencyBucketsMs.length + 1);
  t.is(typeof snapshot.commands.ping.latencySumMs, 'number');
  c.close();
  await h.server.close();
});
