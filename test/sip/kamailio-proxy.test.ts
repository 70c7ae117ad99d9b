// Kamailio (Debian's) as one of the proxies of rtphub's proxy table, beside a SIPp stand-in on
// the same level: calls alternate between them; the ones through Kamailio reach the SIPp callee
// with both record-routes (Kamailio's and rtphub's with alternatePath), SDP pointing at the
// relay, RTP both ways, and BYE crossing both proxies ends the call in the relay. Kamailio also
// answers rtphub's OPTIONS health probes. Skipped (with a log line) when kamailio or sipp is
// not installed.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { installed, kamailioBinary, PeerGroup, sippBinary, waitForSipProxy } from '../helpers/sip-peers';
import { waitFor } from '../helpers/wait';
import { diagnostics, Front, fixtures, freeSipPort, inRange, logged, placeCalls, startFront, startUas, watchMedia, workDir } from './harness';

const media = { min: 52400, max: 52599 };
const missing = [kamailioBinary, sippBinary].filter((tool) => !installed(tool));

test('Kamailio on level 1 with a SIPp proxy: calls alternate, both record-route, media anchored both ways, BYE ends the call', async (t) => {
  if (missing.length > 0) {
    t.log(`skipped: ${missing.join(' and ')} not installed (Debian packages kamailio and sip-tester)`);
    t.pass();
    return;
  }
  const dir = workDir('rtphub-sip-kamailio-');
  const peers = new PeerGroup();
  const started: { front?: Front } = {};
  t.teardown(async () => {
    await peers.stopAll();
    await started.front?.running.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const kamailioPort = await freeSipPort();
  const cfg = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfg, fs.readFileSync(path.join(fixtures, 'kamailio-proxy.cfg'), 'utf8').replaceAll('@SIP_PORT@', String(kamailioPort)));
  const run = path.join(dir, 'run');
  fs.mkdirSync(run);
  const kamailio = peers.spawn('kamailio', kamailioBinary, ['-DD', '-E', '-f', cfg, '-P', path.join(run, 'k.pid'), '-Y', run, '-w', dir, '-m', '32', '-M', '4'], dir);
  await waitForSipProxy(kamailio, kamailioPort);
  const uas = await startUas(peers, dir, 'uas');
  const front = await startFront(media, [
    `--proxy=sip:127.0.0.1:${kamailioPort};priority=1`,
    `--proxy=sip:127.0.0.1:${uas.port};priority=1`,
    '--alternate-path=127.0.0.1:51998',
    '--proxy-probe-interval=200',
  ]);
  started.front = front;
  const calls = 6;
  // the Request-URI names the SIPp callee: Kamailio routes there; the direct proxy is the callee
  const uac = await placeCalls(peers, dir, front.port, { name: 'kam', calls, rate: 6, durationMs: 1500, timeoutS: 30, target: `127.0.0.1:${uas.port}` });
  const { bothWays } = await watchMedia(front, uac.process);
  const exit = await uac.process.exitWithin(1000);
  t.is(exit.code, 0, `every call completed\n${diagnostics(dir, [uac.process, kamailio, uas.process], front)}`);

  const offers = logged(uas.log, 'offer');
  t.is(offers.length, calls, 'every call reached the callee');
  t.deepEqual(offers.filter((o) => !inRange(o.text, media)), [], 'with SDP pointing at the relay');
  const routes = logged(uas.log, 'record-route').map((r) => r.text);
  const viaKamailio = routes.filter((r) => r.includes(`127.0.0.1:${kamailioPort}`));
  t.is(viaKamailio.length, calls / 2, `half the calls went through Kamailio: ${JSON.stringify(routes)}`);
  const ours = logged(uas.log, 'alternate-path').map((r) => r.text);
  t.is(ours.length, calls);
  for (const r of ours) t.regex(r, new RegExp(`^Record-Route: <sip:127\\.0\\.0\\.1:${front.port};lr;alternatePath=127\\.0\\.0\\.1:51998>$`), 'rtphub record-routed with alternatePath');
  t.deepEqual([...bothWays].filter(([, ok]) => !ok).map(([id]) => id), [], 'RTP both ways in every call');
  await waitFor(() => front.running.calls.size === 0, 'every call to end after its BYE', 3000);
  t.is(front.running.relay.info().portsInUse, 0);
  const [pk, pu] = front.sip.table?.proxies ?? [];
  t.is(pk.counters.successes, calls / 2);
  t.is(pu.counters.successes, calls / 2);
  t.true(pk.counters.probes > 0 && pk.counters.probeFailures === 0, 'Kamailio answers the OPTIONS probes');
  t.is(front.sip.counters.internalErrors, 0);
});
