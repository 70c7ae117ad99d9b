/**
 * A call's statistics in the structure of rtpengine's `query`/`delete` replies (created,
 * last signal, tags -> medias -> streams with local port, endpoint, advertised endpoint, last
 * packet, flags and stats, then totals), fed from the native leg counters. A stream's numbers
 * are what its party sent to the relay, on the leg facing that party.
 */
import { isIPv6 } from 'node:net';
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

const family = (address: string): string => (isIPv6(address) ? 'IPv6' : 'IPv4');

function endpointDict(e: Endpoint | null): Record<string, BEncodable> {
  if (!e) return {};
  return { family: family(e.address), address: e.address, port: e.port };
}

function errorsOf(c: LegCounters): number {
  return c.drops_source + c.drops_malformed;
}

function streamDict(
  kind: 'RTP' | 'RTCP',
  localAddress: string,
  localPort: number,
  learned: Endpoint | null,
  advertised: Endpoint | null,
  counters: LegCounters,
  strict: boolean,
): { dict: Record<string, BEncodable>; totals: Totals } {
  const rtp = kind === 'RTP';
  const totals = {
    packets: rtp ? counters.rtp_packets_in : counters.rtcp_packets_in,
    bytes: rtp ? counters.rtp_bytes_in : counters.rtcp_bytes_in,
    errors: rtp ? errorsOf(counters) : 0,
  };
  const flags: string[] = [kind];
  if (advertised) flags.push('filled');
  if (learned) flags.push('confirmed');
  if (strict) flags.push('strict source address');
  const dict: Record<string, BEncodable> = {
    'local port': localPort,
    'local address': localAddress,
    family: family(localAddress),
    endpoint: endpointDict(learned ?? advertised),
    'advertised endpoint': endpointDict(advertised),
    'last packet': counters.last_packet_ms > 0 ? monotonicToUnix(counters.last_packet_ms) : 0,
    flags,
  };
  if (rtp && counters.last_ssrc) dict.SSRC = counters.last_ssrc;
  dict.stats = { ...totals };
  return { dict, totals };
}

function mediaDict(media: MediaSession, side: LegSide, add: (kind: 'RTP' | 'RTCP', t: Totals) => void): Record<string, BEncodable> {
  const state: SideState = media.sides[side];
  const stream = media.stream;
  const out: Record<string, BEncodable> = { index: media.index + 1, type: media.type, protocol: media.protocol };
  if (state.codecs[0]) out.codec = `${state.codecs[0].name}/${state.codecs[0].clockRate ?? 8000}`;
  const streams: BEncodable[] = [];
  if (stream) {
    const leg = stream[side];
    const counters = stream.counters()[side];
    const rtp = streamDict('RTP', leg.localAddress, leg.localPort, state.learned, state.signalled, counters, false);
    streams.push(rtp.dict);
    add('RTP', rtp.totals);
    if (!state.rtcpMux) {
      const rtcpAdvertised = state.signalledRtcp;
      const rtcp = streamDict('RTCP', leg.localAddress, leg.localPort + 1, state.learnedRtcp, rtcpAdvertised, counters, false);
      streams.push(rtcp.dict);
      add('RTCP', rtcp.totals);
    }
  }
  out.streams = streams;
  const flags = ['initialized'];
  if (state.direction === 'sendrecv' || state.direction === 'sendonly') flags.push('send');
  if (state.direction === 'sendrecv' || state.direction === 'recvonly') flags.push('recv');
  if (state.rtcpMux) flags.push('rtcp-mux');
  out.flags = flags;
  return out;
}

/** The stats part of a query/delete reply (without `result`). */
export function callStats(call: Call): Record<string, BEncodable> {
  const totals = { RTP: { packets: 0, bytes: 0, errors: 0 }, RTCP: { packets: 0, bytes: 0, errors: 0 } };
  const add = (kind: 'RTP' | 'RTCP', t: Totals): void => {
    totals[kind].packets += t.packets;
    totals[kind].bytes += t.bytes;
    totals[kind].errors += t.errors;
  };
  const tags: Record<string, BEncodable> = {};
  for (const side of ['a', 'b'] as const) {
    const tag = call.sides[side];
    if (tag === null) continue;
    const party = call.parties.get(tag);
    const peer = call.sides[side === 'a' ? 'b' : 'a'];
    const peers = peer === null ? [] : [{ tag: peer, type: 'offer/answer' }];
    const entry: Record<string, BEncodable> = { tag, created: Math.floor(party?.created ?? call.created) };
    if (party?.viaBranch) entry['via-branch'] = party.viaBranch;
    entry.subscriptions = peers;
    entry.subscribers = peers;
    entry.medias = call.media.filter((m) => m !== undefined).map((m) => mediaDict(m, side, add));
    tags[tag] = entry;
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
