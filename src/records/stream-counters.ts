/**
 * The native counters of every media session's streams, kept past the streams' close so an
 * ended call's record can carry them.
 *
 * The call model closes a call's streams before it reports the call ended, and a closed
 * stream's counters are gone, so this reads a stream's counters when the call model reports
 * its media session `releasing` (just before the close) and credits them to that media session.
 * A media session that had several streams (one replaced by a re-offer) sums them.
 *
 * Loss and jitter are measured by the data plane per leg, on the RTP arriving there (RFC 3550:
 * `rtp_expected` from the extended sequence span per SSRC, `rtp_lost` = expected - received,
 * `jitter_q4` = interarrival jitter x 16 in RTP timestamp units at the leg's clock rate).
 */
import { sendClockRate, type MediaSession } from '../calls/media-session';
import type { LegCounters, LegSide } from '../native/types';

export interface LegTotals {
  /** Summed over the media session's streams; `last_*` and jitter from the last stream that had RTP. */
  counters: Record<string, number>;
  local: string | null;
  loss: { expected: number; lost: number } | null;
  /** Interarrival jitter of the RTP from this side, in ms; null without RTP or a clock rate. */
  jitterMs: number | null;
}

export type MediaTotals = Record<LegSide, LegTotals>;

const sides: LegSide[] = ['a', 'b'];

/** Counters that describe the latest packet rather than accumulate. */
const LATEST = new Set(['last_packet_ms', 'last_ssrc', 'last_seq', 'jitter_q4']);

function emptyLeg(): LegTotals {
  return { counters: {}, local: null, loss: null, jitterMs: null };
}

function copy(totals: MediaTotals): MediaTotals {
  const leg = (t: LegTotals): LegTotals => ({ ...t, counters: { ...t.counters }, loss: t.loss ? { ...t.loss } : null });
  return { a: leg(totals.a), b: leg(totals.b) };
}

export class StreamCounters {
  private readonly finals = new WeakMap<MediaSession, MediaTotals>();

  /** The media session's final counters (its closed streams plus, if any, its live one). */
  totals(media: MediaSession): MediaTotals | null {
    const final = this.finals.get(media);
    const stream = media.stream;
    if (!stream || stream.closed) return final ?? null;
    const merged = final ? copy(final) : { a: emptyLeg(), b: emptyLeg() };
    fold(merged, media, stream.counters(), stream);
    return merged;
  }

  /** The call model is about to close this media session's stream: keep its final counters. */
  releasing(media: MediaSession): void {
    const stream = media.stream;
    if (!stream || stream.closed) return;
    const totals = this.finals.get(media) ?? { a: emptyLeg(), b: emptyLeg() };
    fold(totals, media, stream.counters(), stream);
    this.finals.set(media, totals);
  }
}

/** Adds one stream's counters to a media session's totals. */
function fold(
  totals: MediaTotals,
  media: MediaSession,
  counters: { a: LegCounters; b: LegCounters },
  stream: { a: { localAddress: string; localPort: number }; b: { localAddress: string; localPort: number } },
): void {
  for (const side of sides) {
    const c = counters[side];
    const t = totals[side];
    const hadRtp = c.rtp_packets_in - c.nonrtp_packets_in > 0 || c.rtp_expected > 0;
    for (const [name, value] of Object.entries(c)) {
      if (!LATEST.has(name)) t.counters[name] = (t.counters[name] ?? 0) + value;
      else if (hadRtp || t.counters[name] === undefined) t.counters[name] = value;
    }
    if (c.rtp_expected > 0) {
      t.loss = { expected: (t.loss?.expected ?? 0) + c.rtp_expected, lost: (t.loss?.lost ?? 0) + c.rtp_lost };
      const rate = sendClockRate(media.sides[side]);
      t.jitterMs = rate > 0 ? (c.jitter_q4 / 16 / rate) * 1000 : null;
    }
    const leg = stream[side];
    t.local = `${leg.localAddress}:${leg.localPort}`;
  }
}
