// Runs the ng fuzz corpus (test/fixtures/ng/corpus) through the server's message path:
// each file must get exactly its expected outcome, and random mutations of the corpus must
// never make parsing or the server throw.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decode, toPlain } from '../../src/ng/bencode';
import { parseMessage } from '../../src/ng/message';
import { NgServer } from '../../src/ng/server';

const dir = join(__dirname, '..', 'fixtures', 'ng');
const expected = JSON.parse(readFileSync(join(dir, 'corpus-expected.json'), 'utf8')) as Record<string, string>;
const files = readdirSync(join(dir, 'corpus')).filter((f) => f.endsWith('.bin')).sort();
const corpus = files.map((f) => ({ name: f, bytes: readFileSync(join(dir, 'corpus', f)) }));

const source = { address: '127.0.0.1', port: 5060 };

function newServer(): NgServer {
  return new NgServer({ listenNg: null, handler: async () => ({ result: 'ok' }) });
}

/** The reply's `result` (or `error-reason` when it is an error), or `no-reply`. */
function outcome(reply: Buffer | undefined): string {
  if (!reply) return 'no-reply';
  const space = reply.indexOf(0x20);
  const body = reply.subarray(space + 1);
  const dict = body[0] === 0x7b ? (JSON.parse(body.toString()) as Record<string, string>) : toPlain(decode(body));
  if (typeof dict !== 'object' || Array.isArray(dict)) return 'not a dict';
  const result = String(dict.result);
  return result === 'error' ? String(dict['error-reason']) : result;
}

test('every corpus file has an expected outcome and vice versa', (t) => {
  t.deepEqual(files, Object.keys(expected).sort());
  t.true(files.length >= 40);
});

for (const { name, bytes } of corpus) {
  test(`corpus ${name} → ${expected[name]}`, async (t) => {
    const server = newServer();
    t.is(outcome(await server.handleMessage(bytes, source, 'udp')), expected[name]);
  });
}

test('a reply echoes the cookie bytes exactly', async (t) => {
  const server = newServer();
  for (const { bytes } of corpus) {
    const reply = await server.handleMessage(bytes, source, 'udp');
    if (!reply) continue;
    const space = bytes.indexOf(0x20);
    t.true(reply.subarray(0, space + 1).equals(bytes.subarray(0, space + 1)));
  }
});

test('random mutations of the corpus never make parsing or the server throw', async (t) => {
  const server = newServer();
  const mutated = fc
    .tuple(
      fc.constantFrom(...corpus.map((c) => c.bytes)),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
    )
    .map(([base, edits, cut]) => {
      const b = Buffer.from(base);
      for (const [at, v] of edits) if (b.length) b[at % b.length] = v;
      return b.subarray(0, b.length ? cut % (b.length + 1) : 0);
    });
  await fc.assert(
    fc.asyncProperty(mutated, async (bytes) => {
      parseMessage(bytes);
      const reply = await server.handleMessage(bytes, source, 'udp');
      if (reply) outcome(reply);
    }),
    { numRuns: 3000 },
  );
  t.is(server.counters.received, server.counters.replied + server.counters.dropped);
});
