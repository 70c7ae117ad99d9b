/**
 * What a control front (the ng socket, the SIP front) tells the call model about one offer or
 * answer. Fronts translate their own protocol into this; the call model knows no protocol.
 */
import type { LearningMode } from '../native/types';

export type IceMode = 'remove' | 'default' | 'keep';
export type RtcpMuxOption = 'offer' | 'require' | 'demux' | 'accept' | 'reject';

export interface SignalOptions {
  callId: string;
  fromTag: string;
  toTag?: string;
  viaBranch?: string;
  sdp: Buffer;
  /** Endpoint learning for the signalling party's leg (default: the relay's). */
  learning?: LearningMode;
  asymmetric?: boolean;
  strictSource?: boolean;
  /** Use this address instead of the SDP's (flag `SIP source address` with `received-from`). */
  sourceAddress?: string;
  /** Address to write into the SDP instead of the interface's advertised one (`media address`). */
  mediaAddress?: string;
  /** Interface names for the [from, to] sides (`direction`). */
  direction?: readonly string[];
  /** Address family of the rewritten SDP (`address family`). */
  addressFamily?: 'IP4' | 'IP6';
  rtcpMux?: readonly RtcpMuxOption[];
  ice?: IceMode;
  replace?: readonly string[];
  noRtcpAttribute?: boolean;
  fullRtcpAttribute?: boolean;
  /** Extra key/value pairs the front wants kept with the call (SIP front: headers for restoration). */
  labels?: Readonly<Record<string, string>>;
}

export interface DeleteOptions {
  callId: string;
  fromTag?: string;
  toTag?: string;
  /** Seconds; undefined or negative = the relay's default, 0 = at once. */
  delay?: number;
}

export type EndReason = 'deleted' | 'timeout' | 'silent-timeout' | 'offer-timeout' | 'final-timeout' | 'shutdown';

export interface CallTimeouts {
  /** No media for this long ends the call (s). */
  timeout: number;
  /** Same, while every stream is on hold or inactive (s). */
  silentTimeout: number;
  /** An offer that is never answered ends after this long (s). */
  offerTimeout: number;
  /** Absolute limit on a call's duration (s; 0 = none). */
  finalTimeout: number;
  /** Default delay between `delete` and the end of the call (s). */
  deleteDelay: number;
}
