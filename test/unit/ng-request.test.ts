// Unit tests of request normalisation: key and flag spellings, typed reads, warnings,
// rtpp-flags merging and rtpengine's basic checks.
import test from 'ava';
import { BDict, BEncodable, decode, encode } from '../../src/ng/bencode';
import { NgRequestError } from '../../src/ng/errors';
import { canonicalName, commandName } from '../../src/ng/flags';
import { missingField, normaliseRequest } from '../../src/ng/request';
import { parseRtppFlags } from '../../src/ng/rtpp-flags';

const dict = (v: BEncodable): BDict => decode(encode(v)) as BDict;
const req = (v: Record<string, BEncodable>) => normaliseRequest(dict(v));

test('commands match in any case and with hyphens or underscores for spaces', (t) => {
  t.is(commandName('offer'), 'offer');
  t.is(commandName('OFFER'), 'offer');
  t.is(commandName('start_recording'), 'start recording');
  t.is(commandName('Block-DTMF'), 'block DTMF');
  t.is(commandName('dance'), undefined);
  t.is(canonicalName(' Trust_Address '), 'trust-address');
});

test('the core keys of an offer are read', (t) => {
  const r = req({
    command: 'offer',
    'call-id': 'cfBXzDSZqhYNcXM',
    'from-tag': 'mS9rSAn0Cr',
    'via-branch': '5KiTRPZHH1nL6',
    sdp: 'v=0\r\n',
    flags: ['trust address'],
    replace: ['origin', 'session-connection'],
    'address family': 'IP6',
    'received-from': ['IP4', '10.65.31.43'],
    ICE: 'force',
    'transport protocol': 'RTP/SAVPF',
    'media address': '2001:db8::6f24:65b',
    DTLS: 'passive',
  });
  t.is(r.command, 'offer');
  t.is(r.callId, 'cfBXzDSZqhYNcXM');
  t.is(r.fromTag, 'mS9rSAn0Cr');
  t.is(r.viaBranch, '5KiTRPZHH1nL6');
  t.deepEqual(r.sdp, Buffer.from('v=0\r\n'));
  t.deepEqual(r.flags, ['trust-address']);
  t.deepEqual(r.replace, ['origin', 'session-connection']);
  t.is(r.addressFamily, 'IP6');
  t.deepEqual(r.receivedFrom, { family: 'IP4', address: '10.65.31.43' });
  t.deepEqual(r.ice, ['force']);
  t.is(r.transportProtocol, 'RTP/SAVPF');
  t.is(r.mediaAddress, '2001:db8::6f24:65b');
  t.deepEqual(r.options, { dtls: Buffer.from('passive') });
  t.deepEqual(req({ command: 'offer', SDES: ['pad', 'no-NULL_HMAC_SHA1_32'], OSRTP: 'accept' }).flags, [
    'sdes-pad',
    'sdes-no-NULL_HMAC_SHA1_32',
    'osrtp-accept',
  ]);
  t.deepEqual(r.warnings, []);
});

test('key spellings with spaces, hyphens, underscores and case all match', (t) => {
  for (const key of ['call-id', 'call id', 'call_id', 'Call-ID', 'CALL_ID']) {
    t.is(req({ command: 'query', [key]: 'x' }).callId, 'x', key);
  }
  t.is(req({ command: 'delete', 'call-id': 'c', delete_delay: 0 }).deleteDelay, 0);
  t.is(req({ command: 'offer', 'SIP message type': 'SIP request' }).sipMessageType, 'request');
  t.is(req({ command: 'answer', 'sip-message-type': 'reply' }).sipMessageType, 'response');
  t.is(req({ command: 'offer', 'endpoint-learning': 'Heuristic' }).endpointLearning, 'heuristic');
  t.deepEqual(req({ command: 'offer', supports: ['load limit'] }).supports, ['load limit']);
});

test('flags are canonical, aliases folded, each once', (t) => {
  const r = req({
    command: 'offer',
    flags: ['trust address', 'Trust-Address', 'SIP_source_address', 'debugging', 'no codec renegotiation', 'reject ICE', 'ICE-reject'],
  });
  t.deepEqual(r.flags, ['trust-address', 'sip-source-address', 'debug', 'reuse-codecs', 'reject-ice']);
  t.deepEqual(r.warnings, []);
});

test('prefixed flags feed their option; value flags keep their value verbatim', (t) => {
  const r = req({
    command: 'offer',
    flags: ['replace-origin', 'replace_session_name', 'rtcp-mux-demux', 'endpoint-learning-off', 'from-tags-AbC',
      'codec-strip-PCMU', 'CODEC-mask-opus/48000', 'SDES-no-AES_CM_128_HMAC_SHA1_32', 'OSRTP-accept'],
  });
  t.deepEqual(r.replace, ['origin', 'session-name']);
  t.deepEqual(r.rtcpMux, ['demux']);
  t.is(r.endpointLearning, 'off');
  t.deepEqual(r.fromTags, ['AbC']);
  t.deepEqual(r.flags, ['codec-strip-PCMU', 'codec-mask-opus/48000', 'sdes-no-AES_CM_128_HMAC_SHA1_32', 'osrtp-accept']);
});

test('unknown keys, flags and values are warnings, never errors', (t) => {
  const r = req({
    command: 'offer',
    'shiny-new-key': 'x',
    flags: ['flux capacitor'],
    replace: ['everything'],
    ICE: ['sideways'],
    'rtcp-mux': 'maybe',
    'address family': 'IP5',
    'media address': 'not-an-ip',
  });
  t.deepEqual(r.warnings, [
    'Unknown key "shiny-new-key"',
    'Unknown flag "flux capacitor"',
    'Unknown replace option "everything"',
    'Unknown ICE option "sideways"',
    'Unknown rtcp-mux option "maybe"',
    'Unknown address family "IP5"',
    'Could not parse "media-address" address "not-an-ip"',
  ]);
  t.deepEqual(r.flags, ['flux-capacitor']);
  t.deepEqual(r.options['shiny-new-key'], Buffer.from('x'));
  t.is(r.addressFamily, undefined);
  t.is(r.mediaAddress, undefined);
});

const wrongTypes: Array<[string, BEncodable, RegExp]> = [
  ['call-id', 5, /"call-id": expected a string/],
  ['from-tag', ['a'], /"from-tag": expected a string/],
  ['sdp', { a: 1 }, /"sdp": expected a string/],
  ['flags', 3, /"flags": expected a list of strings/],
  ['flags', [['nested']], /"flags": expected a list of strings/],
  ['replace', { origin: 1 }, /"replace"/],
  ['delete-delay', 'soon', /"delete-delay": expected an integer/],
  ['delete-delay', [1], /"delete-delay": expected an integer/],
  ['received-from', ['IP4', '1.2.3.4', 'extra'], /"received-from"/],
  ['rtpp-flags', ['x'], /"rtpp-flags": expected a string/],
];

for (const [key, value, message] of wrongTypes) {
  test(`wrong type for ${key} (${JSON.stringify(value)}) is an NgRequestError`, (t) => {
    t.throws(() => req({ command: 'offer', [key]: value }), { instanceOf: NgRequestError, message });
  });
}

test('delete delay accepts an integer or decimal text, as rtpengine does', (t) => {
  t.is(req({ command: 'delete', 'delete delay': 30 }).deleteDelay, 30);
  t.is(req({ command: 'delete', 'delete-delay': '7' }).deleteDelay, 7);
});

test('received-from also accepts a bare address', (t) => {
  t.deepEqual(req({ command: 'offer', 'received from': '192.0.2.1' }).receivedFrom, { address: '192.0.2.1' });
});

test('direction keeps at most two interfaces', (t) => {
  t.deepEqual(req({ command: 'offer', direction: ['priv', 'pub'] }).direction, ['priv', 'pub']);
  const r = req({ command: 'offer', direction: ['a', 'b', 'c'] });
  t.deepEqual(r.direction, ['a', 'b']);
  t.deepEqual(r.warnings, ['Too many direction interfaces']);
});

test('a later ICE mode replaces an earlier one; extras stay', (t) => {
  t.deepEqual(req({ command: 'offer', ICE: ['trickle', 'remove', 'force_relay'] }).ice, ['trickle', 'force-relay']);
});

test('rtpp-flags merge like keys and flags', (t) => {
  const r = req({
    command: 'offer',
    'call-id': 'c',
    'rtpp_flags':
      'replace-origin via-branch=auto-next strict-source label=callee OSRTP-accept transport-protocol=RTP/AVP address-family=IP4 ICE=remove',
  });
  t.deepEqual(r.replace, ['origin']);
  t.is(r.viaBranch, 'auto-next');
  t.deepEqual(r.flags, ['strict-source', 'osrtp-accept']);
  t.deepEqual(r.options['from-label'], Buffer.from('callee'));
  t.is(r.transportProtocol, 'RTP/AVP');
  t.is(r.addressFamily, 'IP4');
  t.deepEqual(r.ice, ['remove']);
  t.deepEqual(r.warnings, []);
});

test('rtpp-flags: lists, dictionaries, codec shorthands, directions, transport words, tags', (t) => {
  const r = req({
    command: 'offer',
    'from-tag': 'orig',
    'rtpp-flags':
      'OSRTP=[accept] codec=[transcode=[PCMA PCMU] strip=[EVS]] codec-mask=opus direction=priv direction=pub SRTP AVPF from-tag=other to-tag=tt',
  });
  t.deepEqual(r.options.codec, {
    transcode: [Buffer.from('PCMA'), Buffer.from('PCMU')],
    strip: [Buffer.from('EVS')],
  });
  t.deepEqual(r.flags, ['osrtp-accept', 'codec-mask-opus', 'directional']);
  t.deepEqual(r.direction, ['priv', 'pub']);
  t.is(r.transportProtocol, 'RTP/SAVPF');
  t.is(r.fromTag, 'other');
  t.is(r.toTag, 'tt');
});

test('rtpp-flags: internal/external are directions', (t) => {
  t.deepEqual(req({ command: 'offer', 'rtpp-flags': 'internal external' }).direction, ['internal', 'external']);
});

test('rtpp-flags with unbalanced brackets are an error', (t) => {
  t.throws(() => req({ command: 'offer', 'rtpp-flags': 'codec=[strip=[PCMU]' }), {
    instanceOf: NgRequestError,
    message: /Unbalanced "\["/,
  });
  t.throws(() => parseRtppFlags('a]'), { instanceOf: NgRequestError, message: /Unbalanced "\]"/ });
  t.throws(() => parseRtppFlags('[a]'), { instanceOf: NgRequestError });
  t.throws(() => parseRtppFlags('d=[k=v x]'), { instanceOf: NgRequestError, message: /without "="/ });
  t.throws(() => parseRtppFlags('a='.concat('[x='.repeat(40), ']'.repeat(40))), { instanceOf: NgRequestError });
});

test('rtpp-flags parser structures the documentation examples', (t) => {
  t.deepEqual(parseRtppFlags('via-branch=auto-next OSRTP=[accept] codec=[transcode=[PCMA PCMU] accept=[AMR-WB AMR] strip=[EVS]]'), [
    { kind: 'option', key: 'via-branch', value: 'auto-next' },
    { kind: 'option', key: 'OSRTP', value: ['accept'] },
    { kind: 'option', key: 'codec', value: { transcode: ['PCMA', 'PCMU'], accept: ['AMR-WB', 'AMR'], strip: ['EVS'] } },
  ]);
  t.deepEqual(parseRtppFlags('  a  b=c  '), [
    { kind: 'flag', name: 'a' },
    { kind: 'option', key: 'b', value: 'c' },
  ]);
  t.deepEqual(parseRtppFlags('DTLS AVPF'), [{ kind: 'option', key: 'transport-protocol', value: 'UDP/TLS/RTP/SAVPF' }]);
  t.deepEqual(parseRtppFlags('x=[ a  b ]'), [{ kind: 'option', key: 'x', value: ['a', 'b'] }]);
});

test('missingField follows rtpengine order and wording', (t) => {
  t.is(missingField(req({ command: 'ping' })), undefined);
  t.is(missingField(req({ command: 'offer' })), 'No SDP body in message');
  t.is(missingField(req({ command: 'offer', sdp: 'v=0' })), 'No call-id in message');
  t.is(missingField(req({ command: 'offer', sdp: 'v=0', 'call-id': 'c' })), 'No from-tag in message');
  t.is(missingField(req({ command: 'offer', sdp: 'v=0', 'call-id': 'c', 'from-tag': 'f' })), undefined);
  t.is(missingField(req({ command: 'answer', sdp: 'v=0', 'call-id': 'c', 'from-tag': 'f' })), 'No to-tag in message');
  t.is(missingField(req({ command: 'delete' })), 'No call-id in message');
  t.is(missingField(req({ command: 'delete', 'call-id': 'c' })), undefined);
  t.is(missingField(req({ command: 'statistics' })), undefined);
});

test('a "__proto__" key never reaches a prototype', (t) => {
  const r = normaliseRequest(decode(Buffer.from('d7:command4:ping9:__proto__d1:xi1eee')) as BDict);
  t.is(Object.getPrototypeOf(r.options), Object.prototype);
  t.is((r.options as Record<string, unknown>).x, undefined);
});
