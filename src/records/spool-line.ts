/**
 * One spooled record as one line of a spool segment: `SEQ AT CRC JSON\n`, where SEQ is the
 * spool's sequence number, AT the time (Unix ms) the record was queued, CRC the CRC-32 (hex) of
 * `SEQ AT JSON`. JSON never holds a raw newline, so a reader resynchronises at the next `\n`
 * after a damaged line, and a line cut short by a crash (no `\n`, or a CRC that does not match)
 * is detected instead of being misread. Text, so an operator can read a spool with `cut`/`jq`.
 */

export interface SpooledRecord {
  /** Position in the target's spool; strictly increasing. */
  seq: number;
  /** When the record was queued for this target (Unix ms). */
  at: number;
  /** The record, serialised (one JSON object). */
  body: string;
}

const table = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88820 ^ (c >>> 1) : c >>> 1;
  table[n] = c;
}

/** CRC-32 (IEEE) of a string's UTF-8 bytes. */
export function crc32(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

export function encodeLine(r: SpooledRecord): string {
  const head = `${r.seq} ${r.at} `;
  return `${head}${crc32(head + r.body).toString(16)} ${r.body}\n`;
}

/** The record of one line (without its `\n`), or null when the line is damaged. */
export function parseLine(line: string): SpooledRecord | null {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  const c = b < 0 ? -1 : line.indexOf(' ', b + 1);
  if (c < 0) return null;
  const seq = Number(line.slice(0, a));
  const at = Number(line.slice(a + 1, b));
  const crc = parseInt(line.slice(b + 1, c), 16);
  const body = line.slice(c + 1);
  if (!Number.isSafeInteger(seq) || seq <= 0 || !Number.isFinite(at)) return null;
  if (crc32(`${line.slice(0, b + 1)}${body}`) !== crc) return null;
  return { seq, at, body };
}
