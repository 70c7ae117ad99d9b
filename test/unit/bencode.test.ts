// Unit tests of the strict bencode codec: encoding, decoding, rejections and round-trips.
import test from 'ava';
import {
  BencodeError,
  BencodeTruncatedError,
  MAX_DEPTH,
  asText,
  decode,
  decodePrefix,
  encode,
  isBytes,
  isDict,
  isList,
  toPlain,
} from '../../src/ng/bencode';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('encodes the ping example from the ng protocol documentation', (t) => {
  t.is(encode({ command: 'ping' }).toString(), 'd7:command4:pinge');
  t.is(encode({ result: 'pong' }).toString(), 'd6:result4:ponge');
});

test('encodes integers, negatives and zero', (t) => {
  t.is(encode(0).toString(), 'i0e');
  t.is(encode(-0).toString(), 'i0e');
  t.is(encode(42).toString(), 'i42e');
  t.is(encode(-7).toString(), 'i-7e');
  t.is(encode(Number.MAX_SAFE_INTEGER).toString(), `i${Number.MAX_SAFE_INTEGER}e`);
  // every digit count, and both sides of the in-place digit writer's 2^31 limit
  for (let n = 1; n <= Number.MAX_SAFE_INTEGER; n = n * 10 + 7) {
    for (const v of [n, n - 1, -n, n * 3]) if (Number.isSafeInteger(v)) t.is(encode(v).toString(), `i${v}e`);
  }
  for (const v of [2147483647, 2147483648, -2147483648, -2147483649, 4294967295, 1795431457799]) t.is(encode(v).toString(), `i${v}e`);
  // string lengths are written the same way
  t.is(encode('x'.repeat(1234)).subarray(0, 5).toString(), '1234:');
});

test('encodes strings by their UTF-8 byte length', (t) => {
  t.is(encode('').toString(), '0:');
  t.is(encode('é').toString('latin1'), '2:\xc3\xa9');
  t.deepEqual(encode(Buffer.from([0, 255, 10])), Buffer.concat([b('3:'), Buffer.from([0, 255, 10])]));
  t.deepEqual(encode(new Uint8Array([1, 2])), b('2:\x01\x02'));
});

test('encodes lists and dicts in insertion order, skipping undefined values', (t) => {
  t.is(encode({ z: 1, a: ['x', 2], skip: undefined, m: {} }).toString(), 'd1:zi1e1:al1:xi2ee1:mdee');
  t.is(encode([]).toString(), 'le');
});

test('encode rejects what bencode cannot carry', (t) => {
  for (const bad of [1.5, NaN, Infinity, 2 ** 53]) {
    t.throws(() => encode(bad), { instanceOf: BencodeError }, String(bad));
  }
  t.throws(() => encode({ a: null } as never), { instanceOf: BencodeError });
  t.throws(() => encode(true as never), { instanceOf: BencodeError });
});

test('encode rejects cycles and excessive nesting', (t) => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  t.throws(() => encode(cyclic as never), { instanceOf: BencodeError, message: /nesting/ });
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
  t.throws(() => encode(deep as never), { instanceOf: BencodeError });
});

test('decodes byte strings as Buffers viewing the input', (t) => {
  const input = b('4:spam');
  const v = decode(input);
  t.true(isBytes(v));
  t.is(asText(v), 'spam');
  (v as Buffer)[0] = 0x53;
  t.is(input.toString(), '4:Spam');
});

test('decodes a request dictionary', (t) => {
  const v = decode(b('d7:command5:offer5:flagsl13:trust addresse3:numi-3ee'));
  t.true(isDict(v));
  t.deepEqual(toPlain(v), { command: 'offer', flags: ['trust address'], num: -3 });
});

test('decodes any bytes in strings and UTF-8 keys', (t) => {
  const v = decode(Buffer.concat([b('d2:'), Buffer.from('é'), b('3:'), Buffer.from([0, 0xff, 0x80]), b('e')]));
  t.true(isDict(v));
  t.deepEqual((v as Record<string, Buffer>)['é'], Buffer.from([0, 0xff, 0x80]));
});

test('decodes unsorted dict keys (rtpengine and its modules do not sort)', (t) => {
  t.deepEqual(toPlain(decode(b('d1:bi1e1:ai2ee'))), { b: 1, a: 2 });
});

test('a "__proto__" key is data, never the prototype', (t) => {
  const v = decode(b('d9:__proto__d7:pollutei1eee'));
  t.true(isDict(v));
  t.is(Object.getPrototypeOf(v), Object.prototype);
  t.true(Object.prototype.hasOwnProperty.call(v, '__proto__'));
  t.is(({} as Record<string, unknown>).pollute, undefined);
});

test('isList/isDict/isBytes tell the types apart', (t) => {
  t.true(isList(decode(b('le'))));
  t.false(isDict(decode(b('le'))));
  t.false(isDict(decode(b('0:'))));
  t.false(isDict(decode(b('i1e'))));
  t.false(isDict(undefined));
  t.is(asText(decode(b('i1e'))), undefined);
});

const rejected: Array<[string, string, RegExp]> = [
  ['empty input', '', /ends inside value/],
  ['trailing garbage', 'i1ex', /trailing data after value at byte 3/],
  ['two values', 'dede', /trailing data/],
  ['leading zero in integer', 'i01e', /leading zero in integer/],
  ['leading zero in negative integer', 'i-01e', /leading zero in integer/],
  ['negative zero', 'i-0e', /negative zero/],
  ['empty integer', 'ie', /empty integer/],
  ['minus only', 'i-e', /empty integer/],
  ['plus sign', 'i+1e', /bad character in integer/],
  ['space in integer', 'i 1e', /bad character/],
  ['integer beyond 2^53', 'i9007199254740993e', /out of range/],
  ['unterminated integer', 'i12', /ends inside integer/],
  ['leading zero in length', '01:a', /leading zero in string length/],
  ['length beyond input', '5:abc', /runs past end/],
  ['huge length', '99999999999999999999:a', /out of range/],
  ['missing colon', '3abc', /bad character in string length/],
  ['negative length', '-1:a', /unexpected byte 0x2d/],
  ['unterminated list', 'l1:a', /ends inside list/],
  ['unterminated dict', 'd1:ai1e', /ends inside dict/],
  ['dict key missing value', 'd1:ae', /unexpected byte 0x65/],
  ['integer dict key', 'di1ei2ee', /dict key is not a string at byte 1/],
  ['list dict key', 'dlei2ee', /dict key is not a string/],
  ['duplicate key', 'd1:ai1e1:ai2ee', /duplicate dict key "a" at byte 7/],
  ['bad UTF-8 key', 'd1:\xffi1ee', /not valid UTF-8/],
  ['stray end', 'e', /unexpected byte 0x65 at byte 0/],
  ['unknown type', 'x', /unexpected byte 0x78/],
];

for (const [name, input, message] of rejected) {
  test(`decode rejects ${name}`, (t) => {
    const err = t.throws(() => decode(b(input)), { instanceOf: BencodeError, message });
    t.true(Number.isInteger(err?.offset));
  });
}

test('nesting up to MAX_DEPTH decodes, one deeper is rejected', (t) => {
  const ok = 'l'.repeat(MAX_DEPTH) + 'e'.repeat(MAX_DEPTH);
  t.notThrows(() => decode(b(ok)));
  const tooDeep = 'l'.repeat(MAX_DEPTH + 1) + 'e'.repeat(MAX_DEPTH + 1);
  t.throws(() => decode(b(tooDeep)), { instanceOf: BencodeError, message: /nesting deeper than 64/ });
  t.throws(() => decode(b('l'.repeat(100000))), { instanceOf: BencodeError });
});

test('truncation is reported with the bytes needed to go on', (t) => {
  const err = t.throws(() => decode(b('d3:sdp10:v=0')), { instanceOf: BencodeTruncatedError });
  t.is(err?.needed, 19);
  const err2 = t.throws(() => decode(b('d3:sdp')), { instanceOf: BencodeTruncatedError });
  t.is(err2?.needed, 7);
  t.notThrows(() => {
    try {
      decode(b('i1x'));
    } catch (e) {
      if (e instanceof BencodeTruncatedError) throw e;
    }
  }, 'a bad byte is not a truncation');
});

test('decodePrefix stops after one value and reports where', (t) => {
  const { value, end } = decodePrefix(b('xx d1:ai1ee tail'), 3);
  t.deepEqual(toPlain(value), { a: 1 });
  t.is(end, 11);
});

test('duplicate keys go to the callback when one is given, the later value winning', (t) => {
  const seen: Array<[string, number]> = [];
  const v = decode(b('d1:ai1e1:bi0e1:ai2ee'), { onDuplicateKey: (k, at) => seen.push([k, at]) });
  t.deepEqual(toPlain(v), { a: 2, b: 0 });
  t.deepEqual(seen, [['a', 13]]);
});

test('decode accepts a plain Uint8Array', (t) => {
  t.deepEqual(toPlain(decode(new Uint8Array(b('l1:xe')))), ['x']);
});
