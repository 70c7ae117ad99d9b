// A delete with a delay (rtpengine's `delete-delay`: the call lives on for a few seconds after the
// BYE) is replicated: the active relay publishes it with its next refresh, and a standby that
// takes over ends the call when the delay runs out, not at the media timeout an hour later.
import test from 'ava';
import { FailoverLab } from '../../bench/load/failover/lab';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test.serial('a delayed delete survives a takeover and ends the call on time', async (t) => {
  t.timeout(90_000);
  const lab = await FailoverLab.create({ calls: 4, nice: -10, missed: 10 });
  try {
    await lab.setupCalls(4, 100);
    await lab.waitFor(async () => (await lab.ha('b')).calls?.standby === 4, 'relay b holding the 4 calls', 20_000);
    const reply = await lab.ng('a', { command: 'delete', 'call-id': 'call-0', 'delete-delay': 5 });
    t.is(reply.result, 'ok', JSON.stringify(reply));
    // The refresh tick (1 s) carries it to the standby.
    await sleep(2500);
    await lab.killRelay('a');
    await lab.waitFor(async () => (await lab.ha('b')).role === 'active', 'relay b taking over', 10_000);
    t.is((await lab.ng('b', { command: 'query', 'call-id': 'call-0' })).result, 'ok', 'still up right after the takeover');
    await lab.waitFor(async () => (await lab.ng('b', { command: 'query', 'call-id': 'call-0' })).result !== 'ok', 'call-0 ended on relay b', 10_000);
    t.is((await lab.ng('b', { command: 'query', 'call-id': 'call-1' })).result, 'ok', 'the other calls go on');
    t.is((await lab.ha('b')).calls?.own, 3);
  } finally {
    await lab.destroy();
  }
});
