/**
 * Framing of the ng protocol over TCP (rtpengine's `--listen-tcp-ng`): the stream is a
 * plain concatenation of `<cookie> <bencode dictionary>` messages with no delimiter, and
 * replies go back the same way. A message ends where its dictionary ends, so the framer
 * parses incrementally; a truncated dictionary tells it how many bytes it needs before
 * trying again, which keeps large SDPs split over many segments linear in cost.
 *
 * Invariants: `push` never throws; after an error result the stream is unusable (framing
 * is lost) and the caller must close it. Only bencode is framed (as in rtpengine).
 */
import { BencodeError, BencodeTruncatedError, decodePrefix } from './bencode';
import { FRAMING_ERRORS } from './message';

/** Longest cookie accepted on a stream before giving up on finding its space. */
export const MAX_COOKIE_BYTES = 256;

/** What the framer found: complete messages, then possibly one error that ends the stream. */
export interface FramingResult {
  messages: Buffer[];
  error?: { reason: string; cookie?: string };
}

export class TcpFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes that must be buffered before parsing is worth trying again. */
  private needed = 1;
  private failed = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Adds received bytes; returns the messages they complete. */
  push(chunk: Buffer): FramingResult {
    if (this.failed) return { messages: [] };
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.needed) return { messages: [] };
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    return this.cut(buf);
  }

  private cut(buf: Buffer): FramingResult {
    const messages: Buffer[] = [];
    let offset = skipWhitespace(buf, 0);
    for (;;) {
      const step = nextMessage(buf, offset, this.maxMessageBytes);
      if ('end' in step) {
        messages.push(buf.subarray(offset, step.end));
        offset = skipWhitespace(buf, step.end);
        continue;
      }
      if ('error' in step) {
        this.failed = true;
        this.keep(Buffer.alloc(0), 1);
        return { messages, error: step.error };
      }
      this.keep(buf.subarray(offset), step.needed - offset);
      return { messages };
    }
  }

  private keep(rest: Buffer, needed: number): void {
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    this.needed = Math.max(needed, rest.length + 1);
  }
}

type Step = { end: number } | { needed: number } | { error: { reason: string; cookie?: string } };

/** One message starting at `offset`: where it ends, how much more is needed, or why not. */
function nextMessage(buf: Buffer, offset: number, maxBytes: number): Step {
  if (offset >= buf.length) return { needed: offset + 1 };
  const space = buf.indexOf(0x20, offset);
  if (space < 0 || space - offset > MAX_COOKIE_BYTES) {
    if (buf.length - offset <= MAX_COOKIE_BYTES) return { needed: buf.length + 1 };
    return { error: { reason: 'No cookie in message' } };
  }
  const cookie = buf.toString('latin1', offset, space);
  const start = space + 1;
  if (start >= buf.length) return { needed: start + 1 };
  if (buf[start] !== 0x64) return { error: { reason: FRAMING_ERRORS.badFormat, cookie } };
  try {
    return { end: decodePrefix(buf, start).end };
  } catch (e) {
    if (e instanceof BencodeTruncatedError) {
      if (e.needed - offset > maxBytes) return { error: { reason: 'Message too large', cookie } };
      return { needed: e.needed };
    }
    if (e instanceof BencodeError) return { error: { reason: FRAMING_ERRORS.badBencode, cookie } };
    throw e;
  }
}

function skipWhitespace(buf: Buffer, offset: number): number {
  while (offset < buf.length && (buf[offset] === 0x0a || buf[offset] === 0x0d || buf[offset] === 0x20)) offset++;
  return offset;
}
