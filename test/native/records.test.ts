// Malformed restoration records: importStream() refuses anything that is not a well-formed
// record of a known version with RecordFormatError (truncated, bad magic, bad version, trailing
// bytes, out-of-range fields, random bytes), never crashes, and leaks no port. Offsets below
// follow the version-1 layout documented at the top of native/snapshot/record.cc.
import fc from 'fast-check';
import { RecordFormatError, RtphubError } from '../../src/errors';
import { Relay } from '../../src/native/relay';
import { backendTest } from '../helpers/backends';
import { portBlock } from '../helpers/ports';
import { startRelay } from '../helpers/relay';

const ports = portBlock(8);

// Version 1, legs with IPv4 local endpoints and unknown (family 0) remote/signalled endpoints.
const offset = {
  version: 2,
  flags: 3,
  legA: 4,
  legAFlags: 11,
  legALearning: 12,
  legARtpState: 15,
  legARtpPriority: 16,
  legACounterCount: 21,
} as const;

/** The record of a stream with nothing signalled or learned (so the layout above holds), closed again. */
async function sampleRecord(relay: Relay): Promise<Buffer> {
  const stream = await relay.createStream({ a: {}, b: {} });
  const record = await stream.export();
  await stream.close();
  return record;
}

function patched(record: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(record);
  copy[at] = value;
  return copy;
}

async function rejectsAsMalformed(relay: Relay, record: Buffer): Promise<boolean> {
  const outcome = await relay.importStream(record).then(
    async (stream) => {
      await stream.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  return outcome instanceof RecordFormatError;
}

backendTest('a sample record has the documented version-1 layout', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const record = await sampleRecord(relay);
  t.is(record.toString('latin1', 0, 2), 'RH');
  t.is(record[offset.version], 1);
  t.is(record[offset.flags], 0);
  t.is(record[offset.legA], 4, 'IPv4 local endpoint');
  t.is(record[offset.legACounterCount], Relay.legCounterNames.length, 'leg counters');
  const restored = await relay.importStream(record);
  t.is(relay.info().portsInUse, 4, 'the unmodified record imports');
  await restored.close();
});

backendTest('every truncation of a record is a RecordFormatError', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const record = await sampleRecord(relay);
  for (let length = 0; length < record.length; length++) {
    const error = await t.throwsAsync(relay.importStream(record.subarray(0, length)), { instanceOf: RecordFormatError });
    if (length === 0) t.is(error?.code, 'ERR_RECORD_FORMAT');
  }
  t.is(relay.info().portsInUse, 0);
});

backendTest('bad magic, bad version, unknown flags and trailing bytes are RecordFormatErrors', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const record = await sampleRecord(relay);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['magic byte 1', patched(record, 0, 0x58), /magic/],
    ['magic byte 2', patched(record, 1, 0x68), /magic/],
    ['version 0', patched(record, offset.version, 0), /version 0/],
    ['version 2', patched(record, offset.version, 2), /version 2/],
    ['version 255', patched(record, offset.version, 255), /version 255/],
    ['record flags', patched(record, offset.flags, 2), /flags/],
    ['one trailing byte', Buffer.concat([record, Buffer.from([0])]), /trailing/],
    ['a second record behind', Buffer.concat([record, record]), /trailing/],
    ['address family 5', patched(record, offset.legA, 5), /family/],
    ['no local address', patched(record, offset.legA, 0), /local address/],
    ['leg flags', patched(record, offset.legAFlags, 8), /leg flags/],
    ['learning mode 4', patched(record, offset.legALearning, 4), /learning mode/],
    ['latch state 3', patched(record, offset.legARtpState, 3), /latch state/],
    ['latch priority 4', patched(record, offset.legARtpPriority, 4), /priority/],
    [
      'a varint over 64 bits',
      Buffer.concat([record.subarray(0, offset.legACounterCount), Buffer.from([1, ...Array(10).fill(0xff), 0]), record.subarray(offset.legACounterCount + 16)]),
      /varint/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    await t.throwsAsync(relay.importStream(bytes), { instanceOf: RecordFormatError, message }, what);
  }
  t.is(relay.info().portsInUse, 0, 'no rejected record kept a port');
});

backendTest('a record from a newer writer with extra counters is accepted (extras skipped)', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const record = await sampleRecord(relay);
  const counters = record[offset.legACounterCount];
  const legACountersEnd = offset.legACounterCount + 1 + counters; // every counter of a fresh stream is one 0 byte
  const extended = Buffer.concat([
    record.subarray(0, offset.legACounterCount),
    Buffer.from([counters + 2]),
    record.subarray(offset.legACounterCount + 1, legACountersEnd),
    Buffer.from([0x81, 0x01, 0x07]),
    record.subarray(legACountersEnd),
  ]);
  const stream = await relay.importStream(extended);
  t.is(stream.a.localPort, record.readUInt16BE(offset.legA + 5));
  await stream.close();
});

// Random bytes, and random bytes behind a valid header (so decoding gets past the magic and version).
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 160 }),
  fc.uint8Array({ maxLength: 160 }).map((tail) => Buffer.concat([Buffer.from([0x52, 0x48, 1, 0]), tail])),
);

backendTest('random bytes are refused with typed errors (property)', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  await fc.assert(
    fc.asyncProperty(anyBytes, async (bytes) => {
      const record = Buffer.from(bytes);
      const looksLikeV1 = record.length >= 3 && record[0] === 0x52 && record[1] === 0x48 && record[2] === 1;
      const outcome = await relay.importStream(record).then(
        async (stream) => {
          await stream.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      if (!looksLikeV1) return outcome instanceof RecordFormatError;
      return outcome === undefined || outcome instanceof RtphubError;
    }),
    { numRuns: 400, seed: 0x5eed },
  );
  t.is(relay.info().portsInUse, 0);
  t.is(relay.info().streams, 0);
});

backendTest('single-byte corruptions of a real record never crash or leak (property)', async (t, backend) => {
  const relay = startRelay(t, backend, ports.take(20));
  const record = await sampleRecord(relay);
  await fc.assert(
    fc.asyncProperty(fc.nat(record.length - 1), fc.integer({ min: 0, max: 255 }), async (at, value) => {
      const outcome = await relay.importStream(patched(record, at, value)).then(
        async (stream) => {
          await stream.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      return outcome === undefined || outcome instanceof RtphubError;
    }),
    { numRuns: 400, seed: 0xc0de },
  );
  t.is(relay.info().portsInUse, 0);
  t.true(await rejectsAsMalformed(relay, patched(record, 0, 0)), 'the relay still answers');
});
