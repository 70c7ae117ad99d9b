/**
 * Canonical names for ng keys, flags and commands. Controllers spell them freely:
 * rtpengine accepts `trust address`, `trust-address` and (in places) `trust_address`, and
 * several aliases per flag. Here every spelling maps to one canonical form: lower case,
 * words joined by `-`, aliases folded into the name rtpengine documents.
 *
 * Flags that carry a value after a prefix (`codec-strip-PCMU`, `SDES-no-AES_CM_128_HMAC_SHA1_32`,
 * `replace-origin`) keep their value verbatim: only the prefix is canonicalised, because
 * codec and crypto-suite names are case- and underscore-sensitive.
 */

/** Lower case, with each space and underscore turned into a hyphen. */
export function canonicalName(s: string): string {
  return s.trim().toLowerCase().replace(/[ _]/g, '-');
}

/** ng commands, by canonical name, mapped to the name rtpengine uses on the wire. */
const COMMANDS = [
  'ping', 'offer', 'answer', 'delete', 'query', 'list', 'start recording', 'stop recording',
  'pause recording', 'start forwarding', 'stop forwarding', 'block DTMF', 'unblock DTMF',
  'block media', 'unblock media', 'silence media', 'unsilence media', 'play media',
  'stop media', 'play DTMF', 'statistics', 'publish', 'subscribe request',
  'subscribe answer', 'unsubscribe', 'inject start', 'inject stop', 'connect', 'cli',
  'transform', 'create', 'create answer', 'mesh',
] as const;

/** An ng command, spelt as rtpengine spells it (`start recording`, `block DTMF`). */
export type NgCommand = (typeof COMMANDS)[number];

const commandByCanonical = new Map<string, NgCommand>(COMMANDS.map((c) => [canonicalName(c), c]));

/** The command named by `s` in any spelling, or `undefined` if there is none. */
export function commandName(s: string): NgCommand | undefined {
  return commandByCanonical.get(canonicalName(s));
}

/** Every known command. */
export const NG_COMMANDS: readonly NgCommand[] = COMMANDS;

/** Known flags: canonical name first, then aliases (already in canonical spelling). */
const FLAG_ALIASES: ReadonlyArray<readonly string[]> = [
  ['all'],
  ['allow-asymmetric-codecs', 'allow-asymmetric-codec'],
  ['allow-no-codec-media', 'allow-no-codec-medias', 'allow-empty-codec-media', 'allow-empty-codec-medias'],
  ['allow-transcoding'],
  ['always-transcode'],
  ['asymmetric'],
  ['asymmetric-codecs'],
  ['audio-player', 'player'],
  ['bidirectional'],
  ['block-dtmf'],
  ['block-egress'],
  ['block-short', 'block-shorts', 'block-short-packets'],
  ['debug', 'debugging'],
  ['detect-dtmf'],
  ['directional'],
  ['discard-recording'],
  ['early-media'],
  ['egress'],
  ['exclude-recording'],
  ['fatal'],
  ['fast'],
  ['force-transcoding'],
  ['fragment'],
  ['full-rtcp-attribute'],
  ['generate-mid'],
  ['generate-rtcp'],
  ['inactive'],
  ['inject-dtmf'],
  ['loop-protect'],
  ['media-handover'],
  ['mix', 'mixed'],
  ['nat-wait'],
  ['new-branch'],
  ['no-audio-player', 'no-player'],
  ['no-jitter-buffer'],
  ['no-passthrough'],
  ['no-port-latching'],
  ['no-redis-update'],
  ['no-rtcp-attribute'],
  ['no-tls-id'],
  ['original-sendrecv'],
  ['pad-crypto'],
  ['passthrough'],
  ['pierce-nat'],
  ['port-latching'],
  ['provisional'],
  ['record-call'],
  ['recording-announcement'],
  ['recording-vsc'],
  ['recrypt'],
  ['reject-ice', 'ice-reject'],
  ['reorder-codecs'],
  ['reset'],
  ['reuse-codecs', 'no-codec-renegotiation'],
  ['rtcp-mirror', 'mirror-rtcp'],
  ['single-codec'],
  ['sip-source-address'],
  ['siprec'],
  ['skip-recording-db', 'skip-recording-database'],
  ['static-codecs', 'static-codec'],
  ['strict-source'],
  ['strip-extmap'],
  ['symmetric'],
  ['symmetric-codecs'],
  ['to-tag'],
  ['trickle-ice'],
  ['trust-address'],
  ['unidirectional'],
  ['unsubscribe'],
  ['webrtc'],
];

const flagByAlias = new Map<string, string>();
for (const [name, ...aliases] of FLAG_ALIASES) {
  flagByAlias.set(name, name);
  for (const alias of aliases) flagByAlias.set(alias, name);
}

/** The canonical name of a known plain flag (any spelling), or `undefined`. */
export function knownFlag(s: string): string | undefined {
  return flagByAlias.get(canonicalName(s));
}

/**
 * Flag prefixes whose remainder is a value of another option (rtpengine's "aliases from
 * other dictionaries"): `replace-origin` adds `origin` to `replace`, and so on.
 */
export const LIST_PREFIXES: ReadonlyArray<readonly [prefix: string, key: string]> = [
  ['replace-', 'replace'],
  ['rtcp-mux-', 'rtcp-mux'],
  ['endpoint-learning-', 'endpoint-learning'],
  ['from-tags-', 'from-tags'],
];

/**
 * Flag prefixes kept as flags with a verbatim value (codec, crypto and SDP-attribute
 * manipulations); longest first so `codec-strip-` wins over `codec-`.
 */
export const VALUE_PREFIXES: readonly string[] = [
  'codec-transcode-', 'codec-consume-', 'codec-except-', 'codec-accept-', 'codec-ignore-',
  'codec-offer-', 'codec-strip-', 'codec-mask-', 'codec-set-', 'transcode-',
  'sdp-attr-substitute-', 'sdp-attr-remove-', 'sdp-attr-add-',
  'sdes-', 'osrtp-', 'bundle-', 't.38-', 't38-',
];

/**
 * Known values of `replace` (and of `replace-…` flags). `session-connection` is no longer
 * known to rtpengine (it always rewrites the session c= line) but Kamailio still sends it.
 */
const REPLACE_OPTIONS = new Set([
  'origin', 'origin-full', 'session-connection', 'session-name', 'sdp-version',
  'force-increment-sdp-ver', 'username', 'zero-address',
]);

/** True if `canonical` (already canonicalised) is a known `replace` value. */
export function isReplaceOption(canonical: string): boolean {
  return REPLACE_OPTIONS.has(canonical);
}

/** Known top-level request keys, canonical name first, then aliases. */
const KEY_ALIASES: ReadonlyArray<readonly string[]> = [
  ['command'],
  ['call-id'],
  ['from-tag'],
  ['to-tag'],
  ['via-branch'],
  ['sdp'],
  ['flags'],
  ['replace'],
  ['direction'],
  ['address-family'],
  ['received-from'],
  ['media-address'],
  ['ice'],
  ['ice-lite'],
  ['rtcp-mux'],
  ['transport-protocol'],
  ['delete-delay'],
  ['endpoint-learning'],
  ['supports'],
  ['sip-message-type'],
  ['sip-code', 'sip-response-code'],
  ['rtpp-flags'],
  ['cli-args'],
  ['all'],
  ['alias-key'],
  ['audio-player', 'player'],
  ['bundle'],
  ['codec', 'codecs'],
  ['delay-buffer'],
  ['digit', 'code'],
  ['drop-traffic'],
  ['dtls'],
  ['dtls-reverse'],
  ['dtls-fingerprint'],
  ['dtmf-delay'],
  ['dtmf-log-dest', 'dtmf-log-destination'],
  ['dtmf-security'],
  ['dtmf-security-trigger'],
  ['dtmf-security-trigger-end'],
  ['extmap'],
  ['file'],
  ['frequency', 'frequencies'],
  ['from-interface'],
  ['to-interface'],
  ['from-label', 'label'],
  ['to-label'],
  ['set-label'],
  ['from-tags'],
  ['generate-rtcp'],
  ['inbound-peer'],
  ['outbound-peer'],
  ['interface'],
  ['peer'],
  ['limit'],
  ['media-echo'],
  ['metadata'],
  ['osrtp'],
  ['output-destination', 'output-dest', 'output-file', 'recording-destination', 'recording-dest', 'recording-file'],
  ['ptime'],
  ['ptime-reverse', 'reverse-ptime'],
  ['record-call'],
  ['sdes'],
  ['sdp-attr'],
  ['sdp-media-remove'],
  ['t.38', 't38'],
  ['t.38-version'],
  ['template'],
  ['tos'],
  ['trigger'],
  ['trigger-end', 'end-trigger'],
  ['trigger-end-time'],
  ['trigger-end-digits'],
  ['volume'],
  ['xmlrpc-callback'],
  ['blob'],
  ['duration'],
  ['repeat-times'],
  ['repeat-duration'],
  ['pause'],
  ['db-id'],
  ['moh'],
  ['passthrough', 'passthru'],
  ['instance'],
  ['calls'],
  ['media', 'medias'],
];

const keyByAlias = new Map<string, string>();
for (const [name, ...aliases] of KEY_ALIASES) {
  keyByAlias.set(name, name);
  for (const alias of aliases) keyByAlias.set(alias, name);
}

/** Canonical key for `s`: the known name it aliases, else its canonical spelling. */
export function canonicalKey(s: string): { key: string; known: boolean } {
  const c = canonicalName(s);
  const known = keyByAlias.get(c);
  return known ? { key: known, known: true } : { key: c, known: false };
}
