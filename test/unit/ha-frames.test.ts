// Replication frames and keep-alives: framing over arbitrary splits, strict bounds, and parsing
// that refuses anything malformed.
import test from 'ava';
import fc from 'fast-check';
import { RecordFormatError } from '../../src/errors';
import { encode } from '../../src/ng/bencode';
import { encodeFrame, FrameDecoder, FrameError, FrameType, MAX_FRAME_BYTES } from '../../src/ha/frames';
import { parseKeepAlive } from '../../src/ha/keepalive';

test('frames come out whole however the stream is split', (t) => {
  const frames = [
    encodeFrame(FrameType.Hello, 1, encode({ node: 'a', epoch: 1, priority: 100 })),
    encodeFrame(FrameType.SyncBegin, 2),
    encodeFrame(FrameType.Upsert, 3, Buffer.alloc(3000, 7)),
    encodeFrame(FrameType.SyncEnd, 4),
    encodeFrame(FrameType.Handover, 0xffffffff),
  ];
  const stream = Buffer.concat(frames);
  fc.assert(
    fc.property(fc.array(fc.nat(stream.length), { maxLength: 12 }), (cuts) => {
      const decoder = new FrameDecoder();
      const points = [...new Set([0, ...cuts, stream.length])].sort((x, y) => x - y);
      const out = points.slice(1).flatMap((end, i) => decoder.push(stream.subarray(points[i], end)));
      return out.length === frames.length && out[2].payload.length === 3000 && out[4].sequence === 0xffffffff;
    }),
  );
  t.pass();
});

test('an oversized or unknown frame is a FrameError (a RecordFormatError)', (t) => {
  const huge = Buffer.alloc(9);
  huge.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  t.throws(() => new FrameDecoder().push(huge), { instanceOf: FrameError });
  const unknown = encodeFrame(FrameType.Ack, 1);
  unknown.writeUInt8(99, 4);
  const error = t.throws(() => new FrameDecoder().push(unknown), { instanceOf: RecordFormatError });
  t.regex(error!.message, /unknown/);
});

test('random bytes never throw anything but FrameError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      try {
        new FrameDecoder().push(Buffer.from(bytes));
        return true;
      } catch (error) {
        return error instanceof FrameError;
      }
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('keep-alives parse, and malformed ones are refused', (t) => {
  const good = encode({ n: 'relay-b', e: 4, r: 'standby', p: 100, s: 1000, l: 3, h: 0 });
  t.deepEqual(parseKeepAlive(good), { node: 'relay-b', epoch: 4, role: 'standby', priority: 100, sessions: 1000, load: 3, handover: false });
  t.is(parseKeepAlive(Buffer.from('garbage')), null);
  t.is(parseKeepAlive(encode({ n: 'x', e: 1, r: 'boss', p: 1, s: 0, l: 0, h: 0 })), null);
  t.is(parseKeepAlive(encode({ n: '', e: 1, r: 'active', p: 1, s: 0, l: 0, h: 0 })), null);
  t.is(parseKeepAlive(encode({ n: 'x', e: 'one', r: 'active', p: 1, s: 0, l: 0, h: 0 })), null);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => parseKeepAlive(Buffer.from(bytes)) === null || true));
});
