// Golden SDP pairs (test/fixtures/sdp/golden): each `<case>.in.sdp` rewritten with
// `<case>.options.json` must give `<case>.out.sdp` byte for byte, and parse to
// `<case>.summary.json`. Run with UPDATE_GOLDEN=1 to rewrite the expected files (then
// review the diff). Invalid bodies (test/fixtures/sdp/invalid) must give their SdpError.
import test from 'ava';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SdpError } from '../../src/sdp/errors';
import { parseSdp } from '../../src/sdp/parse';
import { RewriteOptions, rewriteSdp } from '../../src/sdp/rewrite';

const root = join(__dirname, '..', 'fixtures', 'sdp');
const golden = join(root, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
const cases = readdirSync(golden)
  .filter((f) => f.endsWith('.in.sdp'))
  .map((f) => f.slice(0, -'.in.sdp'.length))
  .sort();

function expectFile(t: { is: (a: string, b: string, m?: string) => void }, path: string, actual: string): void {
  if (update || !existsSync(path)) writeFileSync(path, actual, { encoding: 'latin1' });
  t.is(actual, readFileSync(path, 'latin1'), path);
}

test('the golden set covers the required cases', (t) => {
  for (const name of ['simple-audio', 'audio-video', 'ipv6', 'ice-removal', 'rtcp-mux', 'port-zero', 'session-c-only', 'hold-sendonly-zero']) {
    t.true(cases.includes(name), name);
  }
});

for (const name of cases) {
  test(`golden ${name}`, (t) => {
    const input = readFileSync(join(golden, `${name}.in.sdp`));
    const options = JSON.parse(readFileSync(join(golden, `${name}.options.json`), 'utf8')) as RewriteOptions;
    const out = rewriteSdp(input, options);
    expectFile(t, join(golden, `${name}.out.sdp`), out.toString('latin1'));
    expectFile(t, join(golden, `${name}.summary.json`), `${JSON.stringify(parseSdp(input).summary, null, 2)}\n`);
    t.notThrows(() => parseSdp(out), 'the output parses again');
  });
}

const invalidExpected = JSON.parse(readFileSync(join(root, 'invalid-expected.json'), 'utf8')) as Record<string, string>;

for (const name of Object.keys(invalidExpected).sort()) {
  test(`invalid ${name} → ${invalidExpected[name]}`, (t) => {
    const input = readFileSync(join(root, 'invalid', name));
    const err = t.throws(() => parseSdp(input), { instanceOf: SdpError });
    t.is(err?.reason as string | undefined, invalidExpected[name]);
    t.throws(() => rewriteSdp(input, { media: [{ address: '203.0.113.7', port: 30000 }] }), { instanceOf: SdpError });
  });
}

test('every invalid fixture is listed', (t) => {
  t.deepEqual(readdirSync(join(root, 'invalid')).sort(), Object.keys(invalidExpected).sort());
});
