/**
 * The native counters of every media session's streams, kept past the streams' close so an
 * ended call's record can carry them, plus what the loss estimate needs.
 *
 * The call model closes a call's streams before it reports the call ended, and a closed
 * stream's counters are gone, so this reads each stream's counters when the call model reports
 * it `releasing` (just before the close) and credits them to the media session that owned it.
 * Streams are matched to media sessions when the call model reports a change (offer, answer,
 * endpoint learned) and on every sampling round.
 *
 * Loss is estimated, not measured: the data plane keeps per leg only the packet count and the
 * last RTP sequence number and SSRC. Sampling them (at the first change after media starts,
 * then once per sampling round) gives an extended sequence number; expected = highest extended seq
 * − the first one sampled, received = packets since, lost = expected − received (at least 0),
 * per SSRC, summed. Packets before the first sample are not covered; a leg that sends more
 * than 32,768 packets between two samples would be misread (6,500 packets/s at 5 s).
 * Duplicates hide losses, as in RTCP's cumulative loss.
 */
import type { Call } from '../calls/call';
import type { MediaSession } from '../calls/media-session';
import type { Stream } from '../native/relay';
import type { LegCounters, LegSide } from '../native/types';

export interface LegTotals {
  /** Summed over the media session's streams; `last_*` from the last stream that had packets. */
  counters: Record<string, number>;
  local: string | null;
  loss: { expected: number; lost: number } | null;
}

export type MediaTotals = Record<LegSide, LegTotals>;

interface SeqTrack {
  ssrc: number;
  firstExt: number;
  firstPackets: number;
  lastExt: number;
  lastPackets: number;
}

interface LegTrack {
  current: SeqTrack | null;
  /** Spans of earlier SSRCs on this leg. */
  done: { expected: number; lost: number } | null;
}

interface Tracked {
  media: MediaSession;
  stream: Stream;
  legs: Record<LegSide, LegTrack>;
}

const sides: LegSide[] = ['a', 'b'];

/** Extends a 16-bit sequence number against the last extended one (reordering tolerated). */
export function extendSeq(lastExt: number, seq: number): number {
  const delta = (seq - (lastExt & 0xffff) + 0x10000) & 0xffff;
  return delta < 0x8000 ? lastExt + delta : lastExt - (0x10000 - delta);
}

function span(t: SeqTrack): { expected: number; lost: number } {
  const expected = Math.max(0, t.lastExt - t.firstExt);
  const received = Math.max(0, t.lastPackets - t.firstPackets);
  return { expected, lost: Math.max(0, expected - received) };
}

function addSpan(a: { expected: number; lost: number } | null, b: { expected: number; lost: number } | null): { expected: number; lost: number } | null {
  if (!a) return b;
  if (!b) return a;
  return { expected: a.expected + b.expected, lost: a.lost + b.lost };
}

/** Updates a leg's sequence tracking from a counters reading. */
function follow(leg: LegTrack, c: LegCounters): void {
  const packets = c.rtp_packets_in;
  if (!packets) return;
  const t = leg.current;
  if (t && t.ssrc === c.last_ssrc) {
    t.lastExt = extendSeq(t.lastExt, c.last_seq);
    t.lastPackets = packets;
    return;
  }
  if (t) leg.done = addSpan(leg.done, span(t));
  // A new SSRC (or the first reading): its span starts here.
  leg.current = { ssrc: c.last_ssrc, firstExt: c.last_seq, firstPackets: packets, lastExt: c.last_seq, lastPackets: packets };
}

function emptyLeg(): LegTotals {
  return { counters: {}, local: null, loss: null };
}

export class StreamCounters {
  private readonly tracked = new Map<number, Tracked>();
  private readonly finals = new WeakMap<MediaSession, MediaTotals>();
  /** Stream ids still to sample in the current round. */
  private round: number[] = [];

  /** Matches the call's streams to its media sessions and (with `sample`) samples them. */
  observe(call: Call, sample = true): void {
    for (const media of call.media) {
      const stream = media?.stream;
      if (!stream || stream.closed) continue;
      let entry = this.tracked.get(stream.id);
      if (!entry || entry.stream !== stream) {
        entry = { media, stream, legs: { a: { current: null, done: null }, b: { current: null, done: null } } };
        this.tracked.set(stream.id, entry);
      }
      if (sample) this.sample(entry);
    }
  }

  /**
   * Samples the next `share` of the tracked streams, so that a round over all of them is spread
   * over several calls instead of one long stretch of the event loop.
   */
  sampleSlice(share: number): void {
    if (this.round.length === 0) this.round = [...this.tracked.keys()];
    const n = Math.max(1, Math.ceil(this.tracked.size * share));
    for (const id of this.round.splice(0, n)) {
      const entry = this.tracked.get(id);
      if (!entry) continue;
      if (entry.stream.closed) this.tracked.delete(id);
      else this.sample(entry);
    }
  }

  /** The media session's final counters (its closed streams plus, if any, its live one). */
  totals(media: MediaSession): MediaTotals | null {
    const final = this.finals.get(media);
    const live = media.stream && !media.stream.closed ? this.tracked.get(media.stream.id) : undefined;
    if (!live) return final ?? null;
    const merged: MediaTotals = final ? structuredClone(final) : { a: emptyLeg(), b: emptyLeg() };
    this.fold(merged, live, live.stream.counters());
    return merged;
  }

  close(): void {
    this.tracked.clear();
  }

  private sample(entry: Tracked): void {
    const counters = entry.stream.counters();
    for (const side of sides) follow(entry.legs[side], counters[side]);
  }

  /** The call model is about to close this media session's stream: keep its final counters. */
  releasing(media: MediaSession): void {
    const stream = media.stream;
    if (!stream) return;
    const entry = this.tracked.get(stream.id);
    if (!entry || entry.stream !== stream) return;
    this.tracked.delete(stream.id);
    const totals = this.finals.get(entry.media) ?? { a: emptyLeg(), b: emptyLeg() };
    this.fold(totals, entry, stream.counters());
    this.finals.set(entry.media, totals);
  }

  /** Adds one stream's counters (and its loss span) to a media session's totals. */
  private fold(totals: MediaTotals, entry: Tracked, counters: { a: LegCounters; b: LegCounters }): void {
    for (const side of sides) {
      const c = counters[side];
      const t = totals[side];
      const sampled = entry.legs[side];
      // No sample before the close: no base to estimate from.
      if (sampled.current || sampled.done) {
        const track: LegTrack = structuredClone(sampled);
        follow(track, c);
        t.loss = addSpan(t.loss, addSpan(track.done, track.current ? span(track.current) : null));
      }
      for (const [name, value] of Object.entries(c)) {
        if (!name.startsWith('last_')) t.counters[name] = (t.counters[name] ?? 0) + value;
        else if (c.rtp_packets_in > 0 || t.counters[name] === undefined) t.counters[name] = value;
      }
      const leg = entry.stream[side];
      t.local = `${leg.localAddress}:${leg.localPort}`;
    }
  }
}
