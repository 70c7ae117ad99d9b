/**
 * Typed errors of the ng control layer. Every failure that an input from the network
 * can cause is one of these, so callers can tell "bad input" (reply with an error)
 * from a bug (log and still reply). The lead may fold `NgError` into `src/errors.ts`.
 */

/** Base class: a failure caused by what a controller sent us. */
export class NgError extends Error {
  override readonly name: string = 'NgError';
}

/** The bytes are not valid bencode, or a value cannot be bencoded. */
export class BencodeError extends NgError {
  override readonly name = 'BencodeError';
  /** Byte offset in the input (decode) or output (encode) where the problem was found. */
  readonly offset: number;

  constructor(reason: string, offset: number) {
    super(`${reason} at byte ${offset}`);
    this.offset = offset;
  }
}

/**
 * The datagram or the request dictionary is not a valid ng request. `reason` is the
 * text that goes into the reply's `error-reason` (rtpengine's wording where it has one).
 */
export class NgRequestError extends NgError {
  override readonly name = 'NgRequestError';
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}
