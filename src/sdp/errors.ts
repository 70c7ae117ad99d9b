/**
 * The typed error of SDP handling. `reason` is rtpengine's reply text for the case
 * (`Failed to parse SDP`, `Incomplete SDP specification`, `Error rewriting SDP`), so the
 * call model can put it into `error-reason` as is; `message` says exactly what was wrong.
 * The lead may fold this into `src/errors.ts`.
 */

export type SdpErrorReason = 'Failed to parse SDP' | 'Incomplete SDP specification' | 'Error rewriting SDP';

export class SdpError extends Error {
  override readonly name = 'SdpError';
  readonly reason: SdpErrorReason;

  constructor(reason: SdpErrorReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.reason = reason;
  }
}
