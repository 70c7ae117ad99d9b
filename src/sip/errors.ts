/**
 * Errors of the SIP front. A SipParseError carries the status a server answers with (400, 413,
 * 505…) and, when enough of a request was read to build a response (Via, From, To, Call-ID,
 * CSeq), that partial request; without it the message can only be dropped and counted.
 */
import { RtphubError } from '../errors';
import type { SipRequest } from './message';

export class SipParseError extends RtphubError {
  override readonly code = 'ERR_SIP_PARSE';
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly partial?: SipRequest,
  ) {
    super(`${status} ${reason}`);
  }
}
