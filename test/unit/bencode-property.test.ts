// Property tests of the bencode codec: round-trips, canonical re-encoding, and that
// random bytes never make the decoder throw anything but a BencodeError.
import test from 'ava';
import fc from 'fast-check';
import { BValue, BencodeError, decode, encode } from '../../src/ng/bencode';

const key = fc.oneof(fc.string({ maxLength: 12 }), fc.fullUnicodeString({ maxLength: 6 }));

const bvalue: fc.Arbitrary<BValue> = fc.letrec<{ value: BValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    fc.maxSafeInteger(),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  ),
})).value;

test('decode(encode(v)) equals v', (t) => {
  fc.assert(
    fc.property(bvalue, (v) => {
      t.deepEqual(decode(encode(v)), v);
    }),
    { numRuns: 2000 },
  );
});

test('encode(decode(bytes)) gives the same bytes back for valid input', (t) => {
  fc.assert(
    fc.property(bvalue, (v) => {
      const bytes = encode(v);
      t.deepEqual(encode(decode(bytes)), bytes);
    }),
    { numRuns: 1000 },
  );
});

test('decode throws nothing but BencodeError on random bytes', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decode(bytes);
      } catch (e) {
        if (!(e instanceof BencodeError)) throw e;
      }
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('decode throws nothing but BencodeError on mutated valid encodings', (t) => {
  const mutated = fc
    .tuple(bvalue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([v, edits, cut]) => {
      const bytes = Buffer.from(encode(v));
      for (const [at, byte] of edits) if (bytes.length) bytes[at % bytes.length] = byte;
      return bytes.subarray(0, bytes.length ? cut % (bytes.length + 1) : 0);
    });
  fc.assert(
    fc.property(mutated, (bytes) => {
      try {
        decode(bytes);
      } catch (e) {
        if (!(e instanceof BencodeError)) throw e;
      }
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
