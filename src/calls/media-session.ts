/**
 * One m= line of a call: the relay stream that anchors it and what each side signalled and the
 * relay learned. Side `a` faces the party that made the first offer, side `b` the other party.
 */
import type { Codec, Direction } from '../sdp/parse';
import type { Stream } from '../native/relay';
import type { Endpoint, LegSide } from '../native/types';

export interface SideState {
  signalled: Endpoint | null;
  signalledRtcp: Endpoint | null;
  learned: Endpoint | null;
  learnedRtcp: Endpoint | null;
  rtcpMux: boolean;
  direction: Direction;
  codecs: Codec[];
  /** The relay interface this side's socket is bound on. */
  interfaceName: string;
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
  };
}

export class MediaSession {
  stream: Stream | null = null;
  rejected = false;
  /** rtcp-mux as negotiated through the relay: offered by the offerer, offered on by us. */
  mux = { offererOffered: false, relayOffered: false };
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
