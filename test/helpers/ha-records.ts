/**
 * A minimal restoration record (no media) for replication tests that play a peer relay by
 * hand: what a relay accepts as a call, with the owner and version the test chooses.
 */
import type { CallRecord } from '../../src/ha/restoration-record';

export function minimalRecord(callId: string, owner: string, version = 1): CallRecord {
  const now = Date.now();
  return {
    callId,
    version,
    owner,
    epoch: 1,
    writtenAt: now,
    created: now,
    lastSignal: now,
    answered: false,
    sideA: 'from',
    sideB: null,
    parties: [{ tag: 'from', labels: {} }],
    media: [],
    sent: { a: {}, b: {} },
  };
}
