/**
 * A call's statistics in the structure of rtpengine's `query`/`delete` replies (created, last
 * signal, tags -> medias -> streams with local port, endpoint, advertised endpoint, last packet,
 * flags and stats, then totals), fed from the native leg counters. A stream's numbers are what its
 * party sent to the relay, on the leg facing that party.
 *
 * Invariant: the keys, flags and their meaning are rtpengine 10.5's (`ng_call_stats`), so a SIP
 * server or a monitoring script reading either relay's replies sees the same structure: a side
 * that has not answered yet is the `<untagged 1>` entry, every media has an RTP and an RTCP
 * stream (with rtcp-mux the RTCP one is rtpengine's unused "fallback RTCP"), and `codec` appears
 * once RTP has arrived.
 */
import { Call } from '../calls/call';
import { monotonicToUnix } from '../calls/clock';
import type { MediaSession, SideState } from '../calls/media-session';
import type { Endpoint, LegCounters, LegSide } from '../native/types';
import type { BEncodable } from './bencode';

interface Totals {
  packets: number;
  bytes: number;
  errors: number;
}

type Kind = 'RTP' | 'RTCP';

/** The family of an address the relay holds (already parsed and checked: only IPv6 has a colon). */
const family = (address: string): string => (address.includes(':') ? 'IPv6' : 'IPv4');
const other = (side: LegSide): LegSide => (side === 'a' ? 'b' : 'a');

function endpointDict(e: Endpoint | null): Record<string, BEncodable> {
  if (!e) return {};
  return { family: family(e.address), address: e.address, port: e.port };
}

/** What one stream received: RTP (plus RTCP with rtcp-mux) or RTCP on its own port. */
function received(kind: Kind, counters: LegCounters, mux: boolean, fallback: boolean): Totals {
  if (fallback) return { packets: 0, bytes: 0, errors: 0 };
  const errors = kind === 'RTP' ? counters.drops_source + counters.drops_malformed : 0;
  if (kind === 'RTCP') return { packets: counters.rtcp_packets_in, bytes: counters.rtcp_bytes_in, errors };
  const packets = counters.rtp_packets_in + (mux ? counters.rtcp_packets_in : 0);
  const bytes = counters.rtp_bytes_in + (mux ? counters.rtcp_bytes_in : 0);
  return { packets, bytes, errors };
}

interface StreamView {
  kind: Kind;
  /** The relay's socket; none for a rejected m= line (port 0, its socket closed). */
  local: { address: string; port: number } | null;
  learned: Endpoint | null;
  advertised: Endpoint | null;
  counters: LegCounters;
  /** The media muxes RTCP: the RTP stream carries it, the RTCP stream is only the fallback. */
  mux: boolean;
  /** The side's SDP had ICE attributes. */
  ice: boolean;
  created: number;
}

/** The counters of a side whose socket is closed (a rejected m= line). */
const NO_COUNTERS: LegCounters = {
  rtp_packets_in: 0,
  rtp_bytes_in: 0,
  rtcp_packets_in: 0,
  rtcp_bytes_in: 0,
  drops_source: 0,
  drops_malformed: 0,
  last_packet_ms: 0,
  last_ssrc: 0,
};

function streamDict(s: StreamView): { dict: Record<string, BEncodable>; totals: Totals } {
  const fallback = s.kind === 'RTCP' && s.mux;
  const totals = received(s.kind, s.counters, s.mux, fallback);
  const flags: string[] = [s.kind];
  if (s.kind === 'RTP' && s.mux) flags.push('RTCP');
  if (fallback) flags.push('fallback RTCP');
  if (s.advertised) flags.push('filled');
  if (s.learned) flags.push('confirmed');
  if (s.ice) flags.push('ICE');
  const lastPacket = !fallback && s.counters.last_packet_ms > 0 ? monotonicToUnix(s.counters.last_packet_ms) : Math.floor(s.created);
  const dict: Record<string, BEncodable> = {};
  if (s.local) {
    dict['local port'] = s.local.port;
    dict['local address'] = s.local.address;
    dict.family = family(s.local.address);
  }
  dict.endpoint = endpointDict(s.learned ?? s.advertised);
  dict['advertised endpoint'] = endpointDict(s.advertised);
  dict['last packet'] = lastPacket;
  dict.flags = flags;
  if (s.kind === 'RTP' && s.counters.last_ssrc) dict.SSRC = s.counters.last_ssrc;
  dict.stats = { packets: totals.packets, bytes: totals.bytes, errors: totals.errors };
  return { dict, totals };
}

/** `codec`: rtpengine names the payload type that carried the most packets; we name the first offered. */
function codecOf(media: MediaSession, side: LegSide, counters: LegCounters): string | undefined {
  if (counters.rtp_packets_in === 0) return undefined;
  const own = media.sides[side].codecs;
  const codec = own.length ? own[0] : media.sides[other(side)].codecs[0];
  if (!codec) return undefined;
  return `${codec.name}/${codec.clockRate ?? 8000}${codec.channels && codec.channels > 1 ? `/${codec.channels}` : ''}`;
}

function mediaFlags(state: SideState, side: LegSide): string[] {
  const flags: string[] = [];
  if (state.initialized) flags.push('initialized');
  if (state.send) flags.push('send');
  if (state.recv) flags.push('recv');
  if (state.rtcpMux) flags.push('rtcp-mux');
  if (state.ice) flags.push('ICE');
  // rtpengine takes the ICE controlling role (even without doing ICE) towards the first offer's receiver
  if (side === 'b') flags.push('ICE controlling');
  return flags;
}

function mediaDict(media: MediaSession, side: LegSide, add: (kind: Kind, t: Totals) => void): Record<string, BEncodable> {
  const state = media.sides[side];
  const out: Record<string, BEncodable> = { index: media.index + 1, type: media.type, protocol: media.protocol };
  const streams: BEncodable[] = [];
  // rtpengine keeps a rejected m= line's streams (without sockets); a never-signalled side has none
  if (media.stream || (media.rejected && state.signalled)) {
    const leg = media.stream?.[side];
    const counters = media.stream?.legCounters(side) ?? NO_COUNTERS;
    const codec = codecOf(media, side, counters);
    if (codec) out.codec = codec;
    const mux = state.rtcpMux;
    const ice = state.ice;
    const created = media.created;
    const rtpLocal = leg ? { address: leg.localAddress, port: leg.localPort } : null;
    // a leg that muxed from the start has no RTCP socket: rtpengine shows port 0 for it
    const rtcpLocal = leg ? { address: leg.localAddress, port: state.singlePort ? 0 : leg.localPort + 1 } : null;
    // Built field by field: object spreads here cost microseconds each (V8's slow clone path).
    const rtp = streamDict({ kind: 'RTP', local: rtpLocal, learned: state.learned, advertised: state.signalled, counters, mux, ice, created });
    const signalled = state.signalled;
    const rtcpAdvertised = state.rtcpMux && signalled ? { address: signalled.address, port: signalled.port + 1 } : state.signalledRtcp;
    const rtcp = streamDict({ kind: 'RTCP', local: rtcpLocal, learned: state.learnedRtcp, advertised: rtcpAdvertised, counters, mux, ice, created });
    streams.push(rtp.dict, rtcp.dict);
    add('RTP', rtp.totals);
    add('RTCP', rtcp.totals);
  }
  out.streams = streams;
  out.flags = mediaFlags(state, side);
  return out;
}

/** The entry of one side under `tags`; `tag` is '' for a side that has not answered yet. */
function tagDict(call: Call, side: LegSide, tag: string, add: (kind: Kind, t: Totals) => void): Record<string, BEncodable> {
  const party = call.parties.get(tag);
  const peer = call.sides[other(side)] ?? '';
  const peers = [{ tag: peer, type: 'offer/answer' }];
  const entry: Record<string, BEncodable> = { tag, created: Math.floor(party?.created ?? call.created) };
  const viaBranch = party ? party.viaBranch : call.untaggedViaBranch;
  if (viaBranch) entry['via-branch'] = viaBranch;
  entry.subscriptions = peers;
  entry.subscribers = peers;
  entry.medias = call.media.filter((m) => m !== undefined).map((m) => mediaDict(m, side, add));
  return entry;
}

/**
 * The stats part of a query/delete reply (without `result`). With `matchTag` (the request's
 * to-tag, else its from-tag) a tag the call does not know yields no tags, as in rtpengine.
 */
export function callStats(call: Call, matchTag?: string): Record<string, BEncodable> {
  const totals = { RTP: { packets: 0, bytes: 0, errors: 0 }, RTCP: { packets: 0, bytes: 0, errors: 0 } };
  const add = (kind: Kind, t: Totals): void => {
    totals[kind].packets += t.packets;
    totals[kind].bytes += t.bytes;
    totals[kind].errors += t.errors;
  };
  const tags: Record<string, BEncodable> = {};
  const known = !matchTag || call.sides.a === matchTag || call.sides.b === matchTag;
  for (const side of known ? (['a', 'b'] as const) : []) {
    const tag = call.sides[side];
    if (tag === null && side === 'a') continue;
    // rtpengine names the callee that has not answered after its index among the call's parties
    tags[tag ?? '<untagged 1>'] = tagDict(call, side, tag ?? '', add);
  }
  return {
    created: Math.floor(call.created),
    created_us: Math.floor((call.created % 1) * 1e6),
    'last signal': Math.floor(call.lastSignal),
    SSRC: {},
    tags,
    totals,
  };
}
