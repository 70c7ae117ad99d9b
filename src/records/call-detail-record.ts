/**
 * The call record (CDR) every ended call yields: what billing and monitoring receive. One JSON
 * object, `id` first (collectors find the idempotency key without parsing the rest); the fields
 * are documented in src/records/README.md. Built from the call model and the final native
 * counters of the call's streams; a pure function of its input.
 */
import crypto from 'node:crypto';
import type { Call } from '../calls/call';
import type { MediaSession, SideState } from '../calls/media-session';
import type { LegSide } from '../native/types';
import type { Codec } from '../sdp/parse';
import type { LegTotals, MediaTotals } from './stream-counters';

export const RECORD_SCHEMA = 'rtphub.call-record/1';

export interface LegRecord {
  /** The relay's RTP socket facing this party, `address:port`. */
  local: string | null;
  /** The party's RTP endpoint: learned from its packets, else as signalled. */
  remote: string | null;
  rtp_packets_in: number;
  rtp_bytes_in: number;
  rtcp_packets_in: number;
  rtcp_bytes_in: number;
  /** Packets and bytes the relay sent to this party (RTP and RTCP). */
  packets_out: number;
  bytes_out: number;
  /** Packets from this party the relay dropped (wrong source, no destination, malformed, send error). */
  dropped: number;
  /** SSRC of the last RTP packet from this party. */
  ssrc: number | null;
  /** RTP from this party per RFC 3550 (extended sequence span per SSRC): null without RTP. */
  loss: { expected: number; lost: number; fraction: number } | null;
  /** RFC 3550 interarrival jitter of the RTP from this party (ms, 0.001 resolution): null without RTP. */
  jitter_ms: number | null;
}

export interface StreamRecord {
  index: number;
  type: string;
  protocol: string;
  rejected: boolean;
  codec: { name: string; payload_type: number; clock_rate: number | null; channels: number | null } | null;
  legs: Record<LegSide, LegRecord>;
}

export interface CallDetailRecord {
  id: string;
  schema: string;
  node: string;
  relay_boot: string;
  relay_seq: number;
  call_id: string;
  from_tag: string | null;
  to_tag: string | null;
  from: string | null;
  to: string | null;
  labels: Record<LegSide, Record<string, string>>;
  start: string;
  answer: string | null;
  end: string;
  duration_s: number;
  answered_s: number | null;
  end_reason: string;
  restoration_version: number;
  streams: StreamRecord[];
}

export interface RecordInput {
  call: Call;
  reason: string;
  /** The relay's name (--ha-node-id, else the host name). */
  node: string;
  /** When this relay process started (ISO), and this record's number in it. */
  boot: string;
  seq: number;
  endedAt: number;
  /** When the relay saw the answer (Unix ms), null if it did not. */
  answeredAt: number | null;
  /** Final counters of a media session's streams. */
  totals(media: MediaSession): MediaTotals | null;
}

const NON_CODECS = /^(telephone-event|cn|red|ulpfec|flexfec|rtx)$/i;
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export function buildCallDetailRecord(input: RecordInput): CallDetailRecord {
  const { call } = input;
  const startMs = Math.round(call.created * 1000);
  const tagA = call.sides.a;
  const tagB = call.sides.b;
  const labels = (tag: string | null): Record<string, string> => ({ ...(tag !== null ? call.parties.get(tag)?.labels : undefined) });
  const a = labels(tagA);
  const b = labels(tagB);
  return {
    id: idempotencyKey(input.node, input.boot, input.seq, call.callId, startMs, input.endedAt),
    schema: RECORD_SCHEMA,
    node: input.node,
    relay_boot: input.boot,
    relay_seq: input.seq,
    call_id: call.callId,
    from_tag: tagA,
    to_tag: tagB,
    from: a.from ?? a.From ?? a.label ?? null,
    to: b.to ?? b.To ?? b.label ?? null,
    labels: { a, b },
    start: new Date(startMs).toISOString(),
    answer: input.answeredAt !== null ? new Date(input.answeredAt).toISOString() : null,
    end: new Date(input.endedAt).toISOString(),
    duration_s: round3((input.endedAt - startMs) / 1000),
    answered_s: input.answeredAt !== null ? round3((input.endedAt - input.answeredAt) / 1000) : null,
    end_reason: input.reason,
    restoration_version: call.version,
    streams: call.media.filter((m) => m !== undefined).map((m) => streamRecord(m, input.totals(m))),
  };
}

/** Unique per record and stable across re-sends: derived from fields the record carries. */
export function idempotencyKey(node: string, boot: string, seq: number, callId: string, startMs: number, endMs: number): string {
  return crypto.createHash('sha256').update(`${node}\n${boot}\n${seq}\n${callId}\n${startMs}\n${endMs}`).digest('hex').slice(0, 32);
}

function streamRecord(m: MediaSession, totals: MediaTotals | null): StreamRecord {
  const codec = negotiated(m);
  return {
    index: m.index,
    type: m.type,
    protocol: m.protocol,
    rejected: m.rejected,
    codec: codec ? { name: codec.name, payload_type: codec.payloadType, clock_rate: codec.clockRate ?? null, channels: codec.channels ?? null } : null,
    legs: { a: legRecord(m.sides.a, totals?.a ?? null), b: legRecord(m.sides.b, totals?.b ?? null) },
  };
}

/** The codec the call settled on: the answerer's first real codec, else the offerer's. */
function negotiated(m: MediaSession): Codec | null {
  const pick = (side: SideState): Codec | undefined => side.codecs.find((c) => !NON_CODECS.test(c.name));
  return pick(m.sides.b) ?? pick(m.sides.a) ?? null;
}

function legRecord(side: SideState, t: LegTotals | null): LegRecord {
  const c = (name: string): number => t?.counters[name] ?? 0;
  const remote = side.learned ?? side.signalled;
  return {
    local: t?.local ?? null,
    remote: remote ? `${remote.address}:${remote.port}` : null,
    rtp_packets_in: c('rtp_packets_in'),
    rtp_bytes_in: c('rtp_bytes_in'),
    rtcp_packets_in: c('rtcp_packets_in'),
    rtcp_bytes_in: c('rtcp_bytes_in'),
    packets_out: c('packets_out'),
    bytes_out: c('bytes_out'),
    dropped: c('drops_source') + c('drops_no_destination') + c('drops_malformed') + c('drops_send'),
    ssrc: t && c('rtp_packets_in') > 0 ? c('last_ssrc') : null,
    loss: t?.loss ? { ...t.loss, fraction: t.loss.expected > 0 ? round3(t.loss.lost / t.loss.expected) : 0 } : null,
    jitter_ms: t?.jitterMs != null ? round3(t.jitterMs) : null,
  };
}
