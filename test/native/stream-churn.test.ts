// Churn: 10,000 streams created and closed (2,000 live at a time, half of the batches with
// rtcp-mux) leave no descriptor, port or stream behind, and further rounds of the same do not
// grow resident memory beyond a bound (measured after garbage collection, once two rounds have
// warmed up the allocators). Serial, with a port range of its own (10000..19999, outside the
// 20000+ blocks of the other files): the checks count this process's descriptors.
import v8 from 'node:v8';
import vm from 'node:vm';
import { backendTest } from '../helpers/backends';
import type { Relay } from '../../src/native/relay';
import { startRelay } from '../helpers/relay';
import { describeDescriptors, openDescriptors, residentBytes } from '../helpers/resources';
import { waitFor } from '../helpers/wait';

const churnRange = { portMin: 10000, portMax: 19999 };
const total = 10_000;
const live = 2_000;
// 12 MiB over 20,000 streams: about 600 bytes a stream. Without a leak, growth stays within a few MiB.
const rssBoundBytes = 12 * 2 ** 20;

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

function settledResidentBytes(): number {
  collectGarbage();
  collectGarbage();
  return residentBytes();
}

/** Creates and closes `total` streams, `live` at a time. */
async function churn(relay: Relay): Promise<void> {
  for (let created = 0, batch = 0; created < total; created += live, batch++) {
    const rtcpMux = batch % 2 === 1;
    const streams = await Promise.all(Array.from({ length: live }, () => relay.createStream({ a: { rtcpMux }, b: { rtcpMux } })));
    if (relay.info().streams !== live) throw new Error(`expected ${live} live streams, got ${relay.info().streams}`);
    await Promise.all(streams.map((s) => s.close()));
  }
}

backendTest.serial('10,000 streams created and closed leave no descriptor or memory behind', async (t, backend) => {
  const descriptors = openDescriptors();
  const relay = startRelay(t, backend, churnRange);
  const running = openDescriptors();

  await churn(relay);
  t.like(relay.info(), { streams: 0, portsInUse: 0 });
  await waitFor(() => relay.stats().sockets === 0 && relay.stats().streams === 0, 'the workers to close every socket');
  t.is(openDescriptors(), running, `descriptors after round 1: ${JSON.stringify(describeDescriptors())}`);

  let warm = 0;
  for (let round = 2; round <= 4; round++) {
    await churn(relay);
    t.like(relay.info(), { streams: 0, portsInUse: 0 });
    t.is(openDescriptors(), running, `descriptors after round ${round}`);
    if (round === 2) warm = settledResidentBytes();
  }
  const growth = settledResidentBytes() - warm;
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  t.log(`${backend}: resident ${mib(warm)} after round 2, ${mib(growth)} more after rounds 3 and 4`);
  // AddressSanitizer's quarantine keeps freed memory on purpose: no RSS bound under it.
  if (process.env.RTPHUB_SANITIZED) t.log(`sanitized build: resident growth ${mib(growth)} not checked`);
  else t.true(growth < rssBoundBytes, `20,000 more streams grew resident memory by ${mib(growth)}`);

  await relay.close();
  t.is(openDescriptors(), descriptors, 'the closed relay holds nothing');
});
