// Unit tests of ng-over-TCP framing: messages back to back, split anywhere, and the
// errors that end a stream.
import test from 'ava';
import fc from 'fast-check';
import { encode } from '../../src/ng/bencode';
import { FRAMING_ERRORS } from '../../src/ng/message';
import { TcpFramer } from '../../src/ng/tcp-framing';

const frame = (cookie: string, v: Parameters<typeof encode>[0]): Buffer =>
  Buffer.concat([Buffer.from(`${cookie} `), encode(v)]);

test('several messages in one chunk are cut apart', (t) => {
  const f = new TcpFramer(1 << 16);
  const a = frame('t1', { command: 'ping' });
  const b = frame('t2', { command: 'ping' });
  const r = f.push(Buffer.concat([a, b]));
  t.deepEqual(r.messages, [a, b]);
  t.is(r.error, undefined);
});

test('a message split over chunks comes out whole once complete', (t) => {
  const f = new TcpFramer(1 << 16);
  const m = frame('t3', { command: 'offer', sdp: 'v=0\r\n'.repeat(100) });
  const cut = [5, 17, 300];
  const parts = [m.subarray(0, cut[0]), m.subarray(cut[0], cut[1]), m.subarray(cut[1], cut[2]), m.subarray(cut[2])];
  for (const p of parts.slice(0, -1)) t.deepEqual(f.push(p).messages, []);
  t.deepEqual(f.push(parts[3]).messages, [m]);
});

test('any split of a stream yields the same messages (property)', (t) => {
  const msgs = [frame('a1', { command: 'ping' }), frame('a2', { command: 'offer', sdp: 'x'.repeat(500) }), frame('a3', { l: [1, [2, { d: 'e' }]] })];
  const stream = Buffer.concat(msgs);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 20 }), (cuts) => {
      const points = [...new Set(cuts)].sort((x, y) => x - y);
      const f = new TcpFramer(1 << 16);
      const out: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, stream.length]) {
        const r = f.push(stream.subarray(prev, p));
        if (r.error) return false;
        out.push(...r.messages);
        prev = p;
      }
      return out.length === 3 && out.every((m, i) => m.equals(msgs[i]));
    }),
  );
  t.pass();
});

test('newlines and spaces between messages are skipped', (t) => {
  const f = new TcpFramer(1 << 16);
  const a = frame('n1', { command: 'ping' });
  t.deepEqual(f.push(Buffer.concat([Buffer.from('\r\n '), a, Buffer.from('\n')])).messages, [a]);
});

test('a non-bencode payload ends the stream with rtpengine\'s reason and the cookie', (t) => {
  const f = new TcpFramer(1 << 16);
  t.deepEqual(f.push(Buffer.from('t5 garbage')), { messages: [], error: { reason: FRAMING_ERRORS.badFormat, cookie: 't5' } });
  t.deepEqual(f.push(Buffer.from('t6 d7:command4:pinge')).messages, [], 'nothing after an error');
});

test('invalid bencode ends the stream', (t) => {
  const f = new TcpFramer(1 << 16);
  const r = f.push(Buffer.from('t7 d7:commandi01ee'));
  t.deepEqual(r.error, { reason: FRAMING_ERRORS.badBencode, cookie: 't7' });
});

test('messages before an error are still delivered', (t) => {
  const f = new TcpFramer(1 << 16);
  const a = frame('ok', { command: 'ping' });
  const r = f.push(Buffer.concat([a, Buffer.from('bad xx')]));
  t.deepEqual(r.messages, [a]);
  t.is(r.error?.cookie, 'bad');
});

test('a message announcing more than the limit is refused early', (t) => {
  const f = new TcpFramer(1000);
  const r = f.push(Buffer.from('big d3:sdp100000:v=0'));
  t.deepEqual(r.error, { reason: 'Message too large', cookie: 'big' });
});

test('a stream with no space for too long has no cookie', (t) => {
  const f = new TcpFramer(1 << 16);
  t.deepEqual(f.push(Buffer.from('x'.repeat(200))).messages, []);
  t.deepEqual(f.push(Buffer.from('x'.repeat(100))).error, { reason: 'No cookie in message' });
});

test('a large SDP in many small chunks is parsed once it is complete', (t) => {
  const f = new TcpFramer(1 << 20);
  const m = frame('big', { command: 'offer', sdp: 'a=candidate:1 1 UDP 1 192.0.2.1 9 typ host\r\n'.repeat(2000) });
  let out: Buffer[] = [];
  for (let i = 0; i < m.length; i += 1000) out = out.concat(f.push(m.subarray(i, i + 1000)).messages);
  t.deepEqual(out, [m]);
});
