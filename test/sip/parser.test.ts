// The strict SIP parser and serializer: what a proxy must accept (compact forms, folding, lists,
// UDP without Content-Length), what earns 400/413/505 and whether a response can be built
// (`partial`), TCP framing, and property tests: random bytes and mutated messages never make
// the parser throw anything but SipParseError, and serialize/parse round-trips.
import test from 'ava';
import fc from 'fast-check';
import { SipParseError } from '../../src/sip/errors';
import { header, headerValues, serialize, SipMessage, splitList } from '../../src/sip/message';
import { MAX_MESSAGE_BYTES, parseMessage } from '../../src/sip/parser';
import { StreamFramer } from '../../src/sip/stream-framer';
import { parseNameAddr, parseUri, parseVia, tagOf } from '../../src/sip/header-values';
import { alternatesOf } from '../../src/sip/alternate-path';

const sdp = 'v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

function invite(extra: string[] = [], body = sdp, length: number | null = Buffer.byteLength(body)): Buffer {
  const lines = [
    'INVITE sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKold',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@example.com>',
    'From: "Alice, A." <sip:alice@example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@10.0.0.1>',
    'Content-Type: application/sdp',
    ...extra,
    ...(length === null ? [] : [`Content-Length: ${length}`]),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

test('parses an INVITE: headers in order, lists split, body cut at Content-Length', (t) => {
  const msg = parseMessage(invite());
  if (msg.kind !== 'request') return t.fail('not a request');
  t.is(msg.method, 'INVITE');
  t.is(msg.uri, 'sip:bob@example.com');
  t.is(headerValues(msg, 'via').length, 2);
  t.is(header(msg, 'call-id'), 'a84b4c76e66710@pc33');
  t.is(tagOf(header(msg, 'from') ?? ''), '1928301774');
  t.is(msg.body.toString(), sdp);
});

test('compact names, folded lines and a missing Content-Length over UDP are accepted', (t) => {
  const text = [
    'OPTIONS sip:x@y SIP/2.0',
    'v: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa',
    'f: <sip:a@b>;tag=1',
    't: <sip:x@y>',
    'i: id1',
    'CSeq: 1',
    '  OPTIONS',
    '',
    '',
  ].join('\r\n');
  const msg = parseMessage(Buffer.from(text));
  t.is(header(msg, 'cseq'), '1 OPTIONS');
  t.is(header(msg, 'call-id'), 'id1');
  t.is(msg.headers[0].name, 'v', 'the name as received is kept for forwarding');
});

test('serialize writes one Content-Length matching the body and parses back the same', (t) => {
  const msg = parseMessage(invite());
  msg.body = Buffer.from('v=0\r\n');
  const again = parseMessage(serialize(msg), 'tcp');
  t.is(header(again, 'content-length'), '5');
  t.is(again.body.toString(), 'v=0\r\n');
  t.deepEqual(
    again.headers.filter((h) => h.key !== 'content-length'),
    msg.headers.filter((h) => h.key !== 'content-length'),
  );
});

interface Bad {
  name: string;
  bytes: Buffer;
  status: number;
  /** A response can be built (the request's Via, From, To, Call-ID and CSeq were read). */
  answerable: boolean;
}

const bad: Bad[] = [
  { name: 'broken start line', bytes: Buffer.from('INVITE sip:x\r\nVia: x\r\n\r\n'), status: 400, answerable: false },
  { name: 'SIP/3.0', bytes: Buffer.from(invite().toString().replace('SIP/2.0\r\n', 'SIP/3.0\r\n')), status: 505, answerable: true },
  { name: 'no Call-ID', bytes: Buffer.from(invite().toString().replace('Call-ID: a84b4c76e66710@pc33\r\n', '')), status: 400, answerable: false },
  { name: 'no Via', bytes: Buffer.from(invite().toString().replace(/Via: [^\r]*\r\n/, '')), status: 400, answerable: false },
  { name: 'bad Content-Length', bytes: invite(['Content-Length: 12x'], sdp, null), status: 400, answerable: true },
  { name: 'Content-Length past the datagram', bytes: invite([], sdp, 4000), status: 400, answerable: true },
  { name: 'two different Content-Lengths', bytes: invite(['Content-Length: 3']), status: 400, answerable: true },
  { name: 'CSeq method differs', bytes: Buffer.from(invite().toString().replace('314159 INVITE', '314159 BYE')), status: 400, answerable: true },
  { name: 'Max-Forwards not a number', bytes: Buffer.from(invite().toString().replace('Max-Forwards: 70', 'Max-Forwards: lots')), status: 400, answerable: true },
  { name: 'non-UTF-8 header', bytes: Buffer.concat([invite(['Subject: x']).subarray(0, 40), Buffer.from([0xff, 0xfe]), invite(['Subject: x']).subarray(40)]), status: 400, answerable: true },
  { name: 'NUL in a header', bytes: invite(['Subject: a\u0000b']), status: 400, answerable: true },
  { name: 'no empty line', bytes: Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n'), status: 400, answerable: false },
  { name: 'oversized', bytes: invite([], 'x'.repeat(MAX_MESSAGE_BYTES)), status: 413, answerable: false },
  { name: 'header line without a colon', bytes: invite(['Garbage line']), status: 400, answerable: true },
  { name: 'From without a tag', bytes: Buffer.from(invite().toString().replace(';tag=1928301774', '')), status: 400, answerable: true },
];

for (const b of bad) {
  test(`bad input: ${b.name} → ${b.status}${b.answerable ? ' (answered)' : ' (dropped)'}`, (t) => {
    const error = t.throws(() => parseMessage(b.bytes), { instanceOf: SipParseError });
    t.is(error?.status, b.status);
    t.is(error?.partial !== undefined, b.answerable, error?.message);
  });
}

test('TCP: Content-Length is required; the framer cuts messages across chunks and skips CRLF keep-alives', (t) => {
  t.throws(() => parseMessage(invite([], sdp, null), 'tcp'), { instanceOf: SipParseError });
  const one = invite();
  const stream = Buffer.concat([Buffer.from('\r\n\r\n'), one, one]);
  const framer = new StreamFramer();
  const messages: Buffer[] = [];
  let pings = 0;
  for (let i = 0; i < stream.length; i += 7) {
    const out = framer.push(stream.subarray(i, i + 7));
    messages.push(...out.messages);
    pings += out.pings;
    t.is(out.error, undefined);
  }
  t.is(messages.length, 2);
  t.is(pings, 1);
  t.deepEqual(messages[1], one);
  t.is(parseMessage(messages[0], 'tcp').body.toString(), sdp);
});

test('TCP framing errors end the stream: no Content-Length, a message over the limit', (t) => {
  t.is(new StreamFramer().push(invite([], sdp, null)).error, 'Missing Content-Length');
  t.is(new StreamFramer().push(Buffer.from(invite([], sdp, 70000).toString().slice(0, 500))).error, 'Message Too Large');
});

test('header values: URIs, name-addr, Via, lists with commas inside quotes and angle brackets', (t) => {
  t.deepEqual(splitList('"A, B" <sip:a@b;x=1,2>, <sip:c@d>'), ['"A, B" <sip:a@b;x=1,2>', '<sip:c@d>']);
  const uri = parseUri('sip:u@[::1]:5070;lr;alternatePath=127.0.0.2:5062+127.0.0.3:5062');
  t.is(uri?.host, '[::1]');
  t.is(uri?.port, 5070);
  t.deepEqual(alternatesOf(uri?.params ?? new Map()), [
    { host: '127.0.0.2', port: 5062 },
    { host: '127.0.0.3', port: 5062 },
  ]);
  t.is(parseNameAddr('"Bob" <sip:bob@x>;tag=9')?.params.get('tag'), '9');
  t.is(parseNameAddr('sip:bob@x;tag=9')?.uri, 'sip:bob@x');
  const via = parseVia('SIP/2.0/TCP host.example:5080;branch=z9hG4bKx;alternatePath="b1:5060,b2:5061";rport');
  t.is(via?.transport, 'TCP');
  t.is(via?.params.get('rport'), null);
  t.is(alternatesOf(via?.params ?? new Map()).length, 2);
  t.is(parseUri('http://x'), null);
  t.is(parseUri('sip:host:99999'), null);
});

function assertOnlyParseErrors(bytes: Uint8Array): void {
  try {
    parseMessage(Buffer.from(bytes));
  } catch (error) {
    if (!(error instanceof SipParseError)) throw error;
  }
}

test('fuzz: random bytes never throw anything but SipParseError', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => assertOnlyParseErrors(bytes)), { numRuns: 5000 });
  t.pass();
});

test('fuzz: mutated INVITEs never throw anything but SipParseError; what parses serializes and parses again', (t) => {
  const base = invite();
  const mutation = fc.array(fc.record({ at: fc.nat(base.length - 1), byte: fc.integer({ min: 0, max: 255 }), cut: fc.boolean() }), { minLength: 1, maxLength: 8 });
  fc.assert(
    fc.property(mutation, (edits) => {
      let bytes = Buffer.from(base);
      for (const e of edits) {
        if (e.cut) bytes = Buffer.concat([bytes.subarray(0, e.at % bytes.length), bytes.subarray((e.at % bytes.length) + 1)]);
        else bytes[e.at % bytes.length] = e.byte;
      }
      let msg: SipMessage;
      try {
        msg = parseMessage(bytes);
      } catch (error) {
        if (error instanceof SipParseError) return;
        throw error;
      }
      const again = parseMessage(serialize(msg), 'tcp');
      t.is(again.kind, msg.kind);
      t.deepEqual(again.body, msg.body);
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('fuzz: the TCP framer never throws and never yields more bytes than it got', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
      const framer = new StreamFramer();
      let got = 0;
      let yielded = 0;
      for (const c of chunks) {
        got += c.length;
        const out = framer.push(Buffer.from(c));
        yielded += out.messages.reduce((n, m) => n + m.length, 0);
        for (const m of out.messages) assertOnlyParseErrors(m);
      }
      return yielded <= got;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
