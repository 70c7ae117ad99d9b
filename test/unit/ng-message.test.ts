// Unit tests of ng message framing: cookie split, bencode/JSON payloads, rtpengine's error
// reasons, and reply encoding in the request's format.
import test from 'ava';
import { decode, encode, toPlain } from '../../src/ng/bencode';
import { FRAMING_ERRORS, decodePayload, encodeReply, errorReply, parseMessage, splitCookie } from '../../src/ng/message';
import { NgRequestError } from '../../src/ng/errors';

const msg = (cookie: string, body: unknown): Buffer =>
  Buffer.concat([Buffer.from(`${cookie} `), typeof body === 'string' ? Buffer.from(body) : encode(body as never)]);

test('splitCookie cuts at the first space and keeps any cookie bytes', (t) => {
  const split = splitCookie(Buffer.concat([Buffer.from([0xff, 0x31]), Buffer.from(' d1:a1:be')]));
  t.is(split?.cookie, '\xff1');
  t.is(split?.payload.toString(), 'd1:a1:be');
  t.is(splitCookie(Buffer.from('nocookie')), undefined);
  t.is(splitCookie(Buffer.from(' d1:a1:be')), undefined, 'empty cookie');
  t.deepEqual(splitCookie(Buffer.from('c '))?.payload, Buffer.alloc(0));
});

test('a request with a bencode dictionary is parsed and normalised', (t) => {
  const parsed = parseMessage(msg('5323_1', { command: 'ping' }));
  t.is(parsed.kind, 'request');
  if (parsed.kind !== 'request') return;
  t.is(parsed.cookie, '5323_1');
  t.is(parsed.format, 'bencode');
  t.is(parsed.request.command, 'ping');
});

test('a JSON dictionary is accepted and marks the reply format', (t) => {
  const parsed = parseMessage(msg('j1', '{"command":"offer","call-id":"c","from-tag":"f","sdp":"v=0","flags":["trust address"]}'));
  t.is(parsed.kind, 'request');
  if (parsed.kind !== 'request') return;
  t.is(parsed.format, 'json');
  t.is(parsed.request.callId, 'c');
  t.deepEqual(parsed.request.sdp, Buffer.from('v=0'));
  t.deepEqual(parsed.request.flags, ['trust-address']);
});

test('JSON values map to bencode: integers, booleans as 1/0, nulls dropped, floats as text', (t) => {
  const dict = decodePayload(Buffer.from('{"a":5,"b":true,"c":null,"d":1.5,"e":[null,"x"],"f":{"g":false}}'));
  t.deepEqual(toPlain(dict), { a: 5, b: 1, d: '1.5', e: ['x'], f: { g: 0 } });
});

const framingCases: Array<[string, string, string]> = [
  ['empty payload', '', FRAMING_ERRORS.noPayload],
  ['not a dictionary format', 'xyz', FRAMING_ERRORS.badFormat],
  ['a bencode list', 'l1:ae', FRAMING_ERRORS.badFormat],
  ['a JSON list', '[1]', FRAMING_ERRORS.badFormat],
  ['truncated bencode', 'd7:command', FRAMING_ERRORS.badBencode],
  ['bencode with trailing bytes', 'd7:command4:pingexx', FRAMING_ERRORS.badBencode],
  ['broken JSON', '{"command":', FRAMING_ERRORS.badJson],
  ['no command', 'd3:fooi1ee', 'Dictionary contains no key "command"'],
  ['integer command', 'd7:commandi1ee', 'Dictionary contains no key "command"'],
  ['unknown command', 'd7:command5:dancee', 'Unrecognized command'],
];

for (const [name, body, reason] of framingCases) {
  test(`${name} gives error "${reason}" with the cookie kept`, (t) => {
    const parsed = parseMessage(msg('ck', body));
    t.is(parsed.kind, 'invalid');
    if (parsed.kind !== 'invalid') return;
    t.is(parsed.cookie, 'ck');
    t.is(parsed.reason, reason);
  });
}

test('JSON errors reply in JSON, bencode errors in bencode', (t) => {
  const j = parseMessage(msg('a', '{"command":'));
  const b = parseMessage(msg('b', 'd7:command'));
  t.is(j.kind === 'invalid' && j.format, 'json');
  t.is(b.kind === 'invalid' && b.format, 'bencode');
});

test('a bencode decoding error carries the exact problem as detail', (t) => {
  const parsed = parseMessage(msg('c', 'd7:commandi01ee'));
  t.true(parsed.kind === 'invalid' && /leading zero/.test(parsed.detail ?? ''));
});

test('a wrong-typed key is an error that names the key, and the command is still known', (t) => {
  const parsed = parseMessage(msg('c', { command: 'offer', 'call-id': 5 }));
  t.is(parsed.kind, 'invalid');
  if (parsed.kind !== 'invalid') return;
  t.is(parsed.reason, 'Wrong type for key "call-id": expected a string');
  t.is(parsed.command, 'offer');
});

test('duplicate keys are a warning, the later value winning', (t) => {
  const parsed = parseMessage(Buffer.from('c d7:command4:ping7:call-id1:a7:call-id1:be'));
  t.is(parsed.kind, 'request');
  if (parsed.kind !== 'request') return;
  t.is(parsed.request.callId, 'b');
  t.deepEqual(parsed.request.warnings, ['Duplicate key "call-id"']);
});

test('no cookie means no reply at all', (t) => {
  t.deepEqual(parseMessage(Buffer.from('d7:command4:pinge')), { kind: 'no-cookie' });
  t.deepEqual(parseMessage(Buffer.from(' d7:command4:pinge')), { kind: 'no-cookie' });
});

test('encodeReply writes `<cookie> <bencode>` as in the protocol documentation', (t) => {
  t.is(encodeReply('5323_1', { result: 'pong' }).toString(), '5323_1 d6:result4:ponge');
});

test('encodeReply keeps any cookie bytes and any SDP bytes', (t) => {
  const sdp = Buffer.from([0x76, 0x3d, 0x30, 0xff]);
  const out = encodeReply('\xfe', { result: 'ok', sdp });
  t.is(out[0], 0xfe);
  t.deepEqual(toPlain(decode(out.subarray(2))), { result: 'ok', sdp: sdp.toString('utf8') });
  t.deepEqual((decode(out.subarray(2)) as { sdp: Buffer }).sdp, sdp);
});

test('encodeReply in JSON turns byte strings into text and leaves undefined out', (t) => {
  const out = encodeReply('j', { result: 'ok', sdp: Buffer.from('v=0\r\n'), warning: undefined, n: [1, 'a'] }, 'json');
  t.is(out.toString(), 'j {"result":"ok","sdp":"v=0\\r\\n","n":[1,"a"]}');
});

test('errorReply has exactly result and error-reason', (t) => {
  t.deepEqual(errorReply('Unknown call-id'), { result: 'error', 'error-reason': 'Unknown call-id' });
});

test('decodePayload throws NgRequestError only', (t) => {
  t.throws(() => decodePayload(Buffer.from('i1e')), { instanceOf: NgRequestError });
  t.throws(() => decodePayload(Buffer.from('{"a":' + '['.repeat(100) + ']'.repeat(100) + '}')), {
    instanceOf: NgRequestError,
  });
});
