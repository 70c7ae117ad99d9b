/**
 * SIP over TCP framing (RFC 3261 18.3): a message is its header section up to CRLF CRLF plus
 * Content-Length bytes of body. CRLF keep-alives between messages (RFC 5626 4.4.1) are skipped.
 *
 * Invariants: `push` never throws; a framing error (no Content-Length, a bad one, a header
 * section or message over the limits) ends the stream: the caller answers if it can and closes.
 */
import { MAX_HEAD_BYTES, MAX_MESSAGE_BYTES, headEnd } from './parser';

export interface FramedChunk {
  messages: Buffer[];
  /** Set once framing is lost; the connection must be closed. */
  error?: string;
  /** CRLF CRLF keep-alive pings seen (answered with CRLF by the caller). */
  pings: number;
}

const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*(\d{1,10})[ \t]*$/im;

export class StreamFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private failed = false;

  push(chunk: Buffer): FramedChunk {
    const out: FramedChunk = { messages: [], pings: 0 };
    if (this.failed) return out;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      let start = 0;
      while (start + 1 < this.buffer.length && this.buffer[start] === 0x0d && this.buffer[start + 1] === 0x0a) start += 2;
      if (start >= 4) out.pings++;
      this.buffer = this.buffer.subarray(start);
      if (this.buffer.length === 0) return out;
      const end = headEnd(this.buffer);
      if (end < 0) {
        if (this.buffer.length > MAX_HEAD_BYTES) return this.fail(out, 'Header Section Too Large');
        return out;
      }
      const head = this.buffer.subarray(0, end).toString('latin1');
      const m = CONTENT_LENGTH.exec(head);
      if (!m) return this.fail(out, 'Missing Content-Length');
      const total = end + 4 + Number(m[1]);
      if (total > MAX_MESSAGE_BYTES) return this.fail(out, 'Message Too Large');
      if (this.buffer.length < total) return out;
      out.messages.push(this.buffer.subarray(0, total));
      this.buffer = this.buffer.subarray(total);
    }
  }

  private fail(out: FramedChunk, reason: string): FramedChunk {
    this.failed = true;
    this.buffer = Buffer.alloc(0);
    out.error = reason;
    return out;
  }
}
