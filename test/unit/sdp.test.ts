// Unit and property tests of SDP parsing and rewriting beyond the golden pairs: summary
// details, option handling, rewrite errors, and "only SdpError, never a crash" on garbage.
import test from 'ava';
import fc from 'fast-check';
import { SdpError } from '../../src/sdp/errors';
import { isZeroAddress, parseSdp, summarizeSdp } from '../../src/sdp/parse';
import { rewriteSdp } from '../../src/sdp/rewrite';

const sdp = (...lines: string[]): string => `${lines.join('\r\n')}\r\n`;
const BASIC = sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 0 101', 'a=rtpmap:101 telephone-event/8000');
const relay = { address: '203.0.113.7', port: 30000 };

test('summary: codecs include static payload types by name', (t) => {
  const [m] = summarizeSdp(BASIC).media;
  t.deepEqual(m.codecs, [
    { payloadType: 0, name: 'PCMU', clockRate: 8000 },
    { payloadType: 101, name: 'telephone-event', clockRate: 8000 },
  ]);
  t.deepEqual(m.formats, ['0', '101']);
  t.is(m.direction, 'sendrecv');
  t.false(m.ice);
  t.deepEqual(m.rtcpEndpoint, { address: '192.0.2.1', port: 4001 });
});

test('summary: session-level direction applies when the media has none', (t) => {
  const [m] = summarizeSdp(BASIC.replace('t=0 0', 't=0 0\r\na=recvonly')).media;
  t.is(m.direction, 'recvonly');
});

test('summary: ICE at session level counts for every media', (t) => {
  const s = summarizeSdp(BASIC.replace('t=0 0', 't=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12'));
  t.true(s.media[0].ice);
});

test('summary: UTF-8 session names are decoded', (t) => {
  t.is(summarizeSdp(Buffer.from(BASIC.replace('s=-', 's=Grüße'), 'utf8')).sessionName, 'Grüße');
});

test('summary: non-RTP media have formats but no codecs', (t) => {
  const [m] = summarizeSdp(BASIC.replace('m=audio 4000 RTP/AVP 0 101', 'm=image 4000 udptl t38')).media;
  t.deepEqual(m.formats, ['t38']);
  t.deepEqual(m.codecs, []);
});

test('isZeroAddress knows both families in any spelling', (t) => {
  for (const a of ['0.0.0.0', '::', '0::0', '0:0:0:0:0:0:0:0']) t.true(isZeroAddress(a), a);
  for (const a of ['0.0.0.1', '::1', '192.0.2.1']) t.false(isZeroAddress(a), a);
});

test('rewrite keeps bytes outside ASCII (latin1 in, latin1 out)', (t) => {
  const input = Buffer.from(BASIC.replace('s=-', 's=Grüße'), 'utf8');
  const out = rewriteSdp(input, { media: [relay] });
  t.true(out.includes(Buffer.from('s=Grüße', 'utf8')));
});

test('rewrite does not change the parsed description it is given', (t) => {
  const parsed = parseSdp(BASIC);
  const before = JSON.stringify(parsed.description);
  rewriteSdp(parsed, { media: [relay] });
  t.is(JSON.stringify(parsed.description), before);
});

test('replace origin without originAddress uses the first relay address', (t) => {
  const out = rewriteSdp(BASIC, { media: [relay], replace: ['origin'] }).toString();
  t.regex(out, /^o=- 1 1 IN IP4 203\.0\.113\.7\r$/m);
});

test('replace origin with an explicit address, session name default', (t) => {
  const out = rewriteSdp(BASIC, { media: [relay], replace: ['origin', 'session-name'], originAddress: '2001:db8::1' }).toString();
  t.regex(out, /^o=- 1 1 IN IP6 2001:db8::1\r$/m);
  t.regex(out, /^s=-\r$/m);
});

test('sdp-version needs both the replace item and a value', (t) => {
  t.regex(rewriteSdp(BASIC, { media: [relay], sdpVersion: 9 }).toString(), /^o=- 1 1 /m);
  t.regex(rewriteSdp(BASIC, { media: [relay], replace: ['sdp-version'], sdpVersion: 9n }).toString(), /^o=- 1 9 /m);
  t.throws(() => rewriteSdp(BASIC, { media: [relay], replace: ['sdp-version'], sdpVersion: 'x' }), { instanceOf: SdpError });
});

test('rtcp: explicit RTCP port, mux added, mux with full attribute', (t) => {
  t.regex(rewriteSdp(BASIC, { media: [{ ...relay, rtcpPort: 31000 }] }).toString(), /a=rtcp:31000\r/);
  const mux = rewriteSdp(BASIC, { media: [{ ...relay, rtcpMux: true }], fullRtcpAttribute: true }).toString();
  t.regex(mux, /a=rtcp:30000 IN IP4 203\.0\.113\.7\r/);
  t.regex(mux, /a=rtcp-mux\r/);
});

test('ICE keep leaves candidates alone', (t) => {
  const withIce = BASIC.replace('a=rtpmap', 'a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\na=candidate:1 1 UDP 1 192.0.2.1 4000 typ host\r\na=rtpmap');
  t.regex(rewriteSdp(withIce, { media: [relay], ice: 'keep' }).toString(), /a=candidate:1 1 UDP 1 192\.0\.2\.1 4000 typ host/);
  t.notRegex(rewriteSdp(withIce, { media: [relay] }).toString(), /candidate|ice-/);
});

test('rewrite errors are SdpErrors with rtpengine\'s reason', (t) => {
  const cases = [
    { media: [] },
    { media: [{ address: '203.0.113.7', port: 0 }] },
    { media: [{ address: '203.0.113.7', port: 70000 }] },
    { media: [{ address: '203.0.113.7', port: 1, rtcpPort: -1 }] },
    { media: [{ address: 'relay.example.com', port: 1 }] },
  ];
  for (const options of cases) {
    const err = t.throws(() => rewriteSdp(BASIC, options), { instanceOf: SdpError }, JSON.stringify(options));
    t.is(err?.reason, 'Error rewriting SDP');
  }
});

test('a rewritten SDP parses back to the relay endpoints', (t) => {
  const twoMedia = `${BASIC}m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n`;
  const out = rewriteSdp(twoMedia, { media: [relay, { address: '2001:db8::7', port: 30002 }] });
  const s = summarizeSdp(out);
  t.is(s.connection, undefined);
  t.deepEqual(
    s.media.map((m) => [m.port, m.connection?.address, m.rtcpEndpoint?.port]),
    [
      [30000, '203.0.113.7', 30001],
      [30002, '2001:db8::7', 30003],
    ],
  );
});

function onlySdpErrors(fn: () => unknown): boolean {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SdpError)) throw e;
  }
  return true;
}

test('parse and rewrite throw nothing but SdpError on random text', (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) =>
      onlySdpErrors(() => rewriteSdp(`v=0\r\n${s}`, { media: [relay, relay, relay] })),
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

test('parse and rewrite throw nothing but SdpError on mutated SDP lines', (t) => {
  const lines = BASIC.split('\r\n');
  const mutated = fc
    .tuple(
      fc.array(fc.nat(lines.length - 1), { maxLength: 4 }),
      fc.array(fc.constantFrom('m=audio x RTP/AVP', 'c=IN IP4', 'c=IN IP6 1.2.3.4', 'a=rtcp:', 'a=rtcp:0', 'o=', 'm=', 'a=candidate:', 'v=1', 'b=AS:x', 'a=rtpmap:999 x', 'm=audio 1 RTP/AVP', 'c=IN IP4 0.0.0.0'), { maxLength: 4 }),
    )
    .map(([at, repl]) => {
      const out = [...lines];
      at.forEach((i, k) => (out[i] = repl[k] ?? ''));
      return out.join('\r\n');
    });
  fc.assert(fc.property(mutated, (s) => onlySdpErrors(() => rewriteSdp(s, { media: [relay] }))), { numRuns: 2000 });
  t.pass();
});

test('rewrite edits lines in place: order kept, unknown lines kept, a=rtcp and a=rtcp-mux last', (t) => {
  const input = sdp(
    'v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'i=session info', 'c=IN IP4 192.0.2.1', 'b=AS:64', 't=0 0', 'k=clear:secret', 'a=X-session:1',
    'm=audio 4000 RTP/AVP 0 101', 'i=media info', 'b=TIAS:64000', 'a=rtcp-mux', 'a=sendrecv', 'a=rtcp:4001', 'a=X-vendor:keep me', 'a=rtpmap:101 telephone-event/8000', 'a=ptime:20',
    'm=video 4002 RTP/AVP 96', 'c=IN IP4 192.0.2.2', 'a=rtpmap:96 H264/90000', 'u=http://example.com',
  );
  const out = rewriteSdp(input, { media: [{ ...relay, rtcpMux: true }, { address: '203.0.113.8', port: 30002 }] }).toString('latin1');
  t.is(
    out,
    sdp(
      'v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'i=session info', 'b=AS:64', 't=0 0', 'k=clear:secret', 'a=X-session:1',
      'm=audio 30000 RTP/AVP 0 101', 'i=media info', 'c=IN IP4 203.0.113.7', 'b=TIAS:64000', 'a=sendrecv', 'a=X-vendor:keep me', 'a=rtpmap:101 telephone-event/8000', 'a=ptime:20', 'a=rtcp:30000', 'a=rtcp-mux',
      'm=video 30002 RTP/AVP 96', 'c=IN IP4 203.0.113.8', 'a=rtpmap:96 H264/90000', 'u=http://example.com', 'a=rtcp:30003',
    ),
  );
});

test('LF and CR line ends are read, CRLF is written; lines that are not SDP are left out', (t) => {
  const lf = BASIC.replace(/\r\n/g, '\n');
  const cr = BASIC.replace(/\r\n/g, '\r').replace('t=0 0', 't=0 0\rnot an SDP line\r');
  const expected = rewriteSdp(BASIC, { media: [relay] }).toString('latin1');
  t.is(rewriteSdp(lf, { media: [relay] }).toString('latin1'), expected);
  t.is(rewriteSdp(cr, { media: [relay] }).toString('latin1'), expected);
  t.deepEqual(summarizeSdp(cr), summarizeSdp(BASIC));
});

test('64-bit o= versions stay exact, kept or replaced', (t) => {
  const big = BASIC.replace('o=- 1 1 ', 'o=- 18446744073709551615 18446744073709551615 ');
  t.regex(rewriteSdp(big, { media: [relay] }).toString(), /^o=- 18446744073709551615 18446744073709551615 IN IP4 192\.0\.2\.1\r$/m);
  const replaced = rewriteSdp(big, { media: [relay], replace: ['sdp-version'], sdpVersion: 18446744073709551616n }).toString();
  t.regex(replaced, /^o=- 18446744073709551615 18446744073709551616 IN IP4 192\.0\.2\.1\r$/m);
});

test('ICE removal takes every ICE line of active media and the session, not of rejected media', (t) => {
  const input = sdp(
    'v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'a=ice-lite', 'a=ice-options:trickle',
    'm=audio 4000 RTP/AVP 0', 'a=ice-ufrag:abcd', 'a=ICE-PWD:efgh', 'a=ice-pacing:50', 'a=candidate:broken', 'a=end-of-candidates', 'a=remote-candidates:1 192.0.2.1 4000', 'a=sendrecv',
    'm=video 0 RTP/AVP 96', 'a=ice-ufrag:abcd',
  );
  const out = rewriteSdp(input, { media: [relay] }).toString('latin1');
  t.is(out, sdp('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0', 'm=audio 30000 RTP/AVP 0', 'c=IN IP4 203.0.113.7', 'a=sendrecv', 'a=rtcp:30001', 'm=video 0 RTP/AVP 96', 'c=IN IP4 192.0.2.1', 'a=ice-ufrag:abcd'));
});

test('session-name replacement adds an s= line where there was none', (t) => {
  const out = rewriteSdp(BASIC.replace('s=-\r\n', ''), { media: [relay], replace: ['session-name'], sessionName: 'rtphub' }).toString();
  t.regex(out, /^o=- 1 1 IN IP4 192\.0\.2\.1\r\ns=rtphub\r\nt=0 0\r$/m);
});

test('rewrite keeps the relative order of every line it does not own (property)', (t) => {
  const attributes = ['a=sendrecv', 'a=ptime:20', 'a=rtpmap:0 PCMU/8000', 'a=fmtp:101 0-15', 'a=X-a:1', 'b=AS:1', 'k=prompt', 'a=rtcp:4001', 'a=rtcp-mux', 'a=mid:1', 'a=ice-ufrag:x', 'c=IN IP4 192.0.2.3'];
  const owned = (l: string): boolean => /^(c=|a=rtcp|a=ice-|m=)/.test(l);
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...attributes), { maxLength: 12 }), (lines) => {
      const input = `${BASIC}${lines.join('\r\n')}${lines.length ? '\r\n' : ''}`;
      const out = rewriteSdp(input, { media: [relay] }).toString('latin1').split('\r\n');
      const kept = input.split('\r\n').filter((l) => l !== '' && !owned(l));
      return JSON.stringify(out.filter((l) => l !== '' && !owned(l))) === JSON.stringify(kept);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('parse and rewrite throw nothing but SdpError on SDP-like tokens and raw bytes', (t) => {
  const tokens = ['v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'c=IN IP4 1.2.3.4', 'c=IN IP6 ::', 'm=audio ', 'a=rtcp:', 'a=rtpmap:', 'a=fmtp:', 'a=candidate:', 'a=', 's=', '0', '9', ' ', '/', 'RTP/AVP', 'IN IP', '\r\n', '\n', '\r', '\t', '\u00a0', '\u00ff'];
  const relays = { media: [relay, { address: '2001:db8::7', port: 30002 }], replace: ['origin', 'session-name', 'sdp-version'], sdpVersion: 2 };
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...tokens), { maxLength: 40 }), (parts) =>
      onlySdpErrors(() => rewriteSdp(Buffer.from(`v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n${parts.join('')}`, 'latin1'), relays)),
    ),
    { numRuns: 3000 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => onlySdpErrors(() => rewriteSdp(Buffer.from(bytes), relays))), { numRuns: 2000 });
  t.pass();
});
