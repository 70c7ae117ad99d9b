/**
 * Media port ranges for the relays of the data-plane tests. ava runs test files side by side
 * (and the tests of one file concurrently), so each file owns a block and each test takes a
 * slice of it that no other test touches. The blocks lie below Linux's ephemeral range
 * (32768..60999), so the tests' own party sockets, bound to port 0, never land in a relay range.
 */

export interface PortRange {
  portMin: number;
  portMax: number;
}

const firstBlockPort = 20000;
const blockSize = 750;
const lastUsablePort = 32767;

/** Hands out disjoint slices of one file's port block. */
export class PortBlock {
  private next: number;
  private readonly end: number;

  constructor(readonly index: number) {
    this.next = firstBlockPort + blockSize * index;
    this.end = Math.min(this.next + blockSize - 1, lastUsablePort);
    if (this.next > lastUsablePort) throw new Error(`port block ${index} lies outside ${firstBlockPort}..${lastUsablePort}`);
  }

  /** The next `count` ports (count even, so the slice starts on an even RTP port). */
  take(count: number): PortRange {
    if (count % 2 !== 0) throw new Error('take an even number of ports');
    const portMin = this.next;
    const portMax = portMin + count - 1;
    if (portMax > this.end) throw new Error(`port block ${this.index} is used up (${portMin}..${portMax} > ${this.end})`);
    this.next = portMax + 1;
    return { portMin, portMax };
  }
}

/** The port block of test file number `index` (each file picks its own, see test/native/README.md). */
export function portBlock(index: number): PortBlock {
  return new PortBlock(index);
}
