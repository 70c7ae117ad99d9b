/**
 * The few typed errors every layer of rtphub uses. The native addon throws these same classes
 * (they are handed to it at load time), so a caller can `instanceof` whatever the engine throws.
 */

export class RtphubError extends Error {
  /** Stable machine-readable code. */
  readonly code: string = 'RTPHUB_ERROR';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A caller passed something malformed (bad address, bad option, bad port). */
export class InvalidArgumentError extends RtphubError {
  override readonly code = 'ERR_INVALID_ARGUMENT';
}

/** No free media port (or descriptor, or session slot) is left. Message as rtpengine's: "Ran out of ports". */
export class PortsExhaustedError extends RtphubError {
  override readonly code = 'ERR_PORTS_EXHAUSTED';
}

/** The stream, call or record asked for does not exist (any more). */
export class NotFoundError extends RtphubError {
  override readonly code = 'ERR_NOT_FOUND';
}

/** The relay (or the object asked) was closed. */
export class ClosedError extends RtphubError {
  override readonly code = 'ERR_CLOSED';
}

/** A restoration record (or replication message) is malformed or of an unknown version. */
export class RecordFormatError extends RtphubError {
  override readonly code = 'ERR_RECORD_FORMAT';
}

/** The operating system refused something (socket, bind, io_uring) for a reason other than the above. */
export class SystemError extends RtphubError {
  override readonly code = 'ERR_SYSTEM';
}

/** The native addon is missing or was built for another Node.js. */
export class AddonLoadError extends RtphubError {
  override readonly code = 'ERR_ADDON_LOAD';
}

/** The classes the addon throws, by the engine's error code name. */
export const nativeErrorClasses = {
  InvalidArgument: InvalidArgumentError,
  PortsExhausted: PortsExhaustedError,
  NotFound: NotFoundError,
  Closed: ClosedError,
  RecordFormat: RecordFormatError,
  System: SystemError,
} as const;
