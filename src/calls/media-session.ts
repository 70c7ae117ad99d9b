/**
 * One m= line of a call: the relay stream that anchors it and what each side signalled and the
 * relay learned. Side `a` faces the party that made the first offer, side `b` the other party.
 *
 * The per-side flags follow rtpengine's media flags, because `query` and `delete` replies show
 * them and SIP servers see those replies: `initialized` once the side has described this m= line
 * in an SDP, `send`/`recv` as the relay sees the latest SDP (it sends to / receives from the side),
 * `rtcpMux` as negotiated through the relay, not as the side last wrote it.
 */
import type { Codec, Direction } from '../sdp/parse';
import type { Stream } from '../native/relay';
import type { Endpoint, LegSide } from '../native/types';
import { unixSeconds } from './clock';

export interface SideState {
  /** The endpoint the side wrote into its SDP, the zero (hold) address included. */
  signalled: Endpoint | null;
  signalledRtcp: Endpoint | null;
  learned: Endpoint | null;
  learnedRtcp: Endpoint | null;
  /** rtcp-mux as negotiated: the relay's leg facing this side muxes RTCP onto the RTP port. */
  rtcpMux: boolean;
  direction: Direction;
  codecs: Codec[];
  /** The relay interface this side's socket is bound on. */
  interfaceName: string;
  /** This side has described the m= line in an SDP of its own. */
  initialized: boolean;
  /** The relay sends media to this side (per the latest SDP of either side). */
  send: boolean;
  /** The relay receives media from this side (per the latest SDP of either side). */
  recv: boolean;
  /** The side's SDP carried ICE attributes (which the relay strips; it does no ICE itself). */
  ice: boolean;
  /** The relay's leg for this side opened without an RTCP port: rtcp-mux was settled before. */
  singlePort: boolean;
}

/**
 * The RTP clock of what a side sends, as the data plane's jitter counter measures it: the clock
 * of the side's first format (8000 when its rtpmap gives none), 0 without RTP formats.
 */
export function sendClockRate(side: SideState): number {
  return side.codecs.length > 0 ? (side.codecs[0].clockRate ?? 8000) : 0;
}

export function emptySide(interfaceName: string): SideState {
  return {
    signalled: null,
    signalledRtcp: null,
    learned: null,
    learnedRtcp: null,
    rtcpMux: false,
    direction: 'sendrecv',
    codecs: [],
    interfaceName,
    initialized: false,
    send: false,
    recv: false,
    ice: false,
    singlePort: false,
  };
}

/**
 * rtcp-mux as negotiated in the last offer: what the offerer wrote, what the relay offered on, and
 * whether the answer may still change the offerer's side (rtpengine's RTCP_MUX_OVERRIDE, inverted).
 */
export interface MuxNegotiation {
  offererOffered: boolean;
  relayOffered: boolean;
  /** The answerer's choice decides the offerer's side; false when the offer already decided it. */
  answerDecides: boolean;
}

export class MediaSession {
  stream: Stream | null = null;
  rejected = false;
  mux: MuxNegotiation = { offererOffered: false, relayOffered: false, answerDecides: false };
  /** When the media was first signalled (Unix seconds): rtpengine's `last packet` before any packet. */
  readonly created = unixSeconds();
  readonly sides: Record<LegSide, SideState>;

  constructor(
    readonly index: number,
    public type: string,
    public protocol: string,
    interfaceNames: Record<LegSide, string>,
  ) {
    this.sides = { a: emptySide(interfaceNames.a), b: emptySide(interfaceNames.b) };
  }

  /** Closes the relay stream (ports back to the pool). */
  async release(): Promise<void> {
    const stream = this.stream;
    this.stream = null;
    if (stream) await stream.close();
  }
}
