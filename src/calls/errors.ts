/**
 * Errors of the call model whose messages are rtpengine's `error-reason` strings, which SIP
 * servers match on (Kamailio's rtpengine module logs and branches on them).
 */
import { RtphubError } from '../errors';

export type CallErrorReason =
  | 'Unknown call-id'
  | "Call-ID not found or tags didn't match"
  | 'Ran out of ports'
  | 'Parallel session limit reached'
  | 'Incomplete SDP specification'
  | 'Failed to parse SDP';

export class CallError extends RtphubError {
  override readonly code = 'ERR_CALL';
  constructor(
    readonly reason: CallErrorReason,
    detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}
