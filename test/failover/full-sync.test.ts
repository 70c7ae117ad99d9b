// A full sync tells the standby which calls its peer owns, and the standby drops the copies it
// holds of any other: unless the sync says it is partial. A relay that just took calls over
// rewrites their records for a while; a full sync sent meanwhile (its replication link reset at
// the takeover) lacks most of them, and a standby that took it for the whole table dropped those
// calls (a split brain that went back and forth lost 900 of 1,000 calls that way). Driven by hand
// against a real standby rtphub in its namespace, with a stand-in peer on its --ha-listen port.
import test from 'ava';
import { FailoverLab, HA_PORT } from '../../bench/load/failover/lab';
import { encodeFrame, FrameType } from '../../src/ha/frames';
import { encodeRecord } from '../../src/ha/restoration-record';
import { minimalRecord } from '../helpers/ha-records';
import { encode } from '../../src/ng/bencode';


/** One connection of the stand-in peer: HELLO, then a full sync of `calls`, ending as told. */
function fullSync(calls: string[], end?: Buffer): Buffer[] {
  let sequence = 0;
  return [
    encodeFrame(FrameType.Hello, ++sequence, encode({ node: 'stand-in', epoch: 1, priority: 1 })),
    encodeFrame(FrameType.SyncBegin, ++sequence),
    ...calls.map((id) => encodeFrame(FrameType.Upsert, ++sequence, encodeRecord(minimalRecord(id, 'stand-in')))),
    encodeFrame(FrameType.SyncEnd, ++sequence, end),
  ];
}

test.serial('a partial full sync removes nothing; a complete one removes the copies it lacks', async (t) => {
  t.timeout(90_000);
  const lab = await FailoverLab.create({ calls: 0, nice: -10, missed: 100 });
  try {
    const b = lab.net.address('b');
    const standby = async (): Promise<number> => (await lab.ha('b')).calls?.standby ?? -1;

    t.false((await lab.tcp(b, HA_PORT, fullSync(['sync-1', 'sync-2', 'sync-3']))).closed);
    await lab.waitFor(async () => (await standby()) === 3, 'the standby holding the 3 calls', 10_000);

    t.false((await lab.tcp(b, HA_PORT, fullSync(['sync-1'], encode({ partial: 1 })))).closed);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.is(await standby(), 3, 'a partial sync keeps the calls it lacks');

    t.false((await lab.tcp(b, HA_PORT, fullSync(['sync-1']))).closed);
    await lab.waitFor(async () => (await standby()) === 1, 'the complete sync removing the 2 calls it lacks', 10_000);

    const reply = await lab.tcp(b, HA_PORT, fullSync([], Buffer.from('not bencode')));
    t.true(reply.closed, 'a malformed SYNC_END ends the connection');
    t.is(await standby(), 1);
  } finally {
    await lab.destroy();
  }
});
