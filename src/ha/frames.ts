/**
 * Replication frames on the TCP link between two relays:
 *   [u32 length of what follows][u8 type][u32 sequence][payload]
 * Types: HELLO (bencoded peer identity), SYNC_BEGIN, UPSERT (an encoded restoration record),
 * DELETE (bencoded {id, v}), SYNC_END, ACK (the sender's sequence applied by the receiver),
 * HANDOVER (the sender gives the receiver every call it owns: switchover or stepping down; it
 * follows all of the sender's records on the same ordered stream, so none is missing).
 * The decoder is incremental and strict: an unknown type or an oversized frame is a
 * FrameError, after which the connection is dropped (and resynced when it returns).
 */
import { RecordFormatError } from '../errors';

export const enum FrameType {
  Hello = 1,
  SyncBegin = 2,
  Upsert = 3,
  Delete = 4,
  SyncEnd = 5,
  Ack = 6,
  Handover = 7,
}

export interface Frame {
  type: FrameType;
  sequence: number;
  payload: Buffer;
}

export const MAX_FRAME_BYTES = 1 << 20;
const HEADER = 4 + 1 + 4;

export class FrameError extends RecordFormatError {}

export function encodeFrame(type: FrameType, sequence: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32BE(payload.length + 5, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32BE(sequence >>> 0, 5);
  payload.copy(out, HEADER);
  return out;
}

/** Cuts frames out of a byte stream. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length < 5 || length > MAX_FRAME_BYTES) throw new FrameError(`replication frame of ${length} bytes is out of bounds`);
      if (this.buffer.length < 4 + length) break;
      const type = this.buffer.readUInt8(4);
      if (type < FrameType.Hello || type > FrameType.Handover) throw new FrameError(`unknown replication frame type ${type}`);
      frames.push({ type, sequence: this.buffer.readUInt32BE(5), payload: this.buffer.subarray(HEADER, 4 + length) });
      this.buffer = this.buffer.subarray(4 + length);
    }
    return frames;
  }
}
