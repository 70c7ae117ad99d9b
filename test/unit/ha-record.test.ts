// Restoration records: round trip, forward compatibility (unknown keys ignored, newer format
// refused), and every malformed input refused with RecordFormatError (fuzzed).
import test from 'ava';
import fc from 'fast-check';
import { RecordFormatError } from '../../src/errors';
import { encode, decode, BDict } from '../../src/ng/bencode';
import { CallRecord, decodeRecord, encodeRecord, RECORD_FORMAT_VERSION } from '../../src/ha/restoration-record';

const side = (port: number) => ({
  signalled: { address: '192.0.2.10', port },
  signalledRtcp: { address: '192.0.2.10', port: port + 1 },
  learned: port % 4 === 0 ? { address: '198.51.100.7', port: port + 100 } : null,
  learnedRtcp: null,
  rtcpMux: false,
  direction: 'sendrecv' as const,
  codecs: [
    { payloadType: 0, name: 'PCMU', clockRate: 8000 },
    { payloadType: 101, name: 'telephone-event', clockRate: 8000, fmtp: '0-16' },
  ],
  interfaceName: 'default',
  initialized: true,
  send: true,
  recv: port % 4 === 0,
  ice: false,
  singlePort: false,
});

const sample = (): CallRecord => ({
  callId: 'a84b4c76e66710@pc33.example.com',
  version: 3,
  owner: 'relay-a',
  epoch: 2,
  writtenAt: 1795400000123,
  created: 1795400000000,
  lastSignal: 1795400000100,
  answered: true,
  answeredAt: 1795400000090,
  sideA: '1928301774',
  sideB: 'a6c85cf',
  parties: [
    { tag: '1928301774', viaBranch: 'z9hG4bK776asdhds', labels: { From: '<sip:alice@example.com>;tag=1928301774', CSeq: '314159 INVITE' } },
    { tag: 'a6c85cf', labels: {} },
  ],
  media: [
    { index: 0, type: 'audio', protocol: 'RTP/AVP', rejected: false, offererOfferedMux: false, relayOfferedMux: false, answerDecidesMux: true, a: side(5004), b: side(6000), stream: Buffer.from([0x52, 0x48, 1, 0, 9, 9]) },
    { index: 1, type: 'video', protocol: 'RTP/AVP', rejected: true, offererOfferedMux: true, relayOfferedMux: true, answerDecidesMux: false, a: side(5006), b: side(6002), stream: null },
  ],
  sent: { a: { sessionName: 'Talk', version: '18446744073709551615', last: Buffer.from('v=0\r\n') }, b: {} },
  untaggedViaBranch: 'z9hG4bK-untagged',
});

test('a record survives encode and decode unchanged', (t) => {
  const record = sample();
  t.deepEqual(decodeRecord(encodeRecord(record)), record);
});

test('a delete with a delay travels with the record; a mistyped one is refused', (t) => {
  const record = { ...sample(), deleteInMs: 29_500 };
  t.deepEqual(decodeRecord(encodeRecord(record)), record);
  t.false('deleteInMs' in decodeRecord(encodeRecord(sample())), 'absent when no delete is pending');
  const dict = decode(encodeRecord(record)) as BDict;
  const error = t.throws(() => decodeRecord(encode({ ...dict, dl: 'soon' })), { instanceOf: RecordFormatError });
  t.true(error!.message.includes('dl'), error!.message);
});

test('a record of one audio call with SIP labels stays under 1 KiB', (t) => {
  const bytes = encodeRecord({ ...sample(), media: [sample().media[0]] });
  t.true(bytes.length < 1024, `${bytes.length} bytes`);
});

test('keys a newer writer adds are ignored; a newer format version is refused', (t) => {
  const dict = decode(encodeRecord(sample())) as BDict;
  t.notThrows(() => decodeRecord(encode({ ...dict, future: 'value' })));
  const newer = encode({ ...dict, f: RECORD_FORMAT_VERSION + 1 });
  const error = t.throws(() => decodeRecord(newer), { instanceOf: RecordFormatError });
  t.regex(error!.message, /newer/);
});

test('each missing or mistyped field is a RecordFormatError naming it', (t) => {
  const dict = decode(encodeRecord(sample())) as BDict;
  const optional = new Set(['sn', 'uv', 'dl', 'aa']);
  for (const key of Object.keys(dict).filter((k) => !optional.has(k))) {
    const without = { ...dict };
    delete without[key];
    const error = t.throws(() => decodeRecord(encode(without)), { instanceOf: RecordFormatError }, `without ${key}`);
    t.true(error!.message.includes(key), error!.message);
    t.throws(() => decodeRecord(encode({ ...dict, [key]: [[['nested']]] })), { instanceOf: RecordFormatError }, `mistyped ${key}`);
  }
});

test('bad values are refused: direction, codec, endpoint, port range', (t) => {
  const dict = decode(encodeRecord(sample())) as BDict;
  const media = (dict.md as BDict[])[0];
  const withMedia = (patch: Record<string, unknown>) => encode({ ...dict, md: [{ ...media, ...patch }] } as never);
  t.throws(() => decodeRecord(withMedia({ a: { ...(media.a as BDict), d: 'sideways' } })), { instanceOf: RecordFormatError });
  t.throws(() => decodeRecord(withMedia({ a: { ...(media.a as BDict), c: [[300, 'X', 0, 0, '']] } })), { instanceOf: RecordFormatError });
  t.throws(() => decodeRecord(withMedia({ a: { ...(media.a as BDict), s: ['192.0.2.1', 70000] } })), { instanceOf: RecordFormatError });
  t.throws(() => decodeRecord(withMedia({ a: { ...(media.a as BDict), s: ['192.0.2.1'] } })), { instanceOf: RecordFormatError });
});

test('random and mutated bytes never throw anything but RecordFormatError', (t) => {
  const valid = encodeRecord(sample());
  const check = (bytes: Uint8Array): boolean => {
    try {
      decodeRecord(Buffer.from(bytes));
      return true;
    } catch (error) {
      return error instanceof RecordFormatError;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), check), { numRuns: 2000 });
  fc.assert(
    fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const copy = Buffer.from(valid);
      copy[at] = byte;
      return check(copy);
    }),
    { numRuns: 3000 },
  );
  fc.assert(fc.property(fc.nat(valid.length), (cut) => check(valid.subarray(0, cut))), { numRuns: 500 });
  t.pass();
});
