// alternatePath (seed 002) end to end. A primary rtphub front runs as its own process with
// --alternate-path naming a backup front (this process); a caller that honours alternatePath
// (test/sip/ua.ts) sets up a call through the primary and Kamailio (its proxy) to a SIPp callee
// that echoes RTP. The primary is killed (SIGKILL) mid-call; the caller's BYE, sent along the
// route set, is refused by the dead primary's address and retried at the backup, which accepts a
// request whose Route names the failed primary and forwards it on to Kamailio and the callee:
// the dialog ends cleanly. A second test puts rtphub on the sending side: a front whose next hop
// is another front with alternatePath retries the backup when that hop dies. (Kamailio sits in
// the path because a SIPp callee sends its responses to the address a call's first request came
// from, the dead primary, not along the Via.)
import test from 'ava';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { header, headerValues } from '../../src/sip/message';
import { installed, kamailioBinary, PeerGroup, sippBinary, waitForSipProxy, waitForUdpPort } from '../helpers/sip-peers';
import { delay, waitFor } from '../helpers/wait';
import { diagnostics, Front, fixtures, freeSipPort, inRange, logged, placeCalls, startFront, startUas, workDir } from './harness';
import { dialogOf, hopsOf, request, TestUa } from './ua';

const primaryMedia = { min: 52600, max: 52699 };
const backupMedia = { min: 52700, max: 52799 };
const repo = path.join(__dirname, '..', '..');
const missing = [kamailioBinary, sippBinary].filter((tool) => !installed(tool));

test.serial('primary front killed mid-call: the BYE follows alternatePath to the backup, which takes the dialog over', async (t) => {
  if (missing.length > 0) {
    t.log(`skipped: ${missing.join(' and ')} not installed (Debian packages kamailio and sip-tester)`);
    t.pass();
    return;
  }
  const dir = workDir('rtphub-sip-alternate-');
  const peers = new PeerGroup();
  const started: { backup?: Front } = {};
  const ua = await TestUa.open();
  const rtp = dgram.createSocket('udp4');
  t.teardown(async () => {
    ua.close();
    rtp.close();
    await peers.stopAll();
    await started.backup?.running.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const uas = await startUas(peers, dir, 'uas');
  const kamailioPort = await freeSipPort();
  const cfg = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfg, fs.readFileSync(path.join(fixtures, 'kamailio-proxy.cfg'), 'utf8').replaceAll('@SIP_PORT@', String(kamailioPort)));
  fs.mkdirSync(path.join(dir, 'run'));
  const kamailio = peers.spawn('kamailio', kamailioBinary, ['-DD', '-E', '-f', cfg, '-P', path.join(dir, 'run', 'k.pid'), '-Y', path.join(dir, 'run'), '-w', dir, '-m', '32', '-M', '4'], dir);
  await waitForSipProxy(kamailio, kamailioPort);
  const backupPort = await freeSipPort();
  const backup = await startFront(backupMedia, [`--proxy=sip:127.0.0.1:${kamailioPort}`], backupPort);
  started.backup = backup;
  const primaryPort = await freeSipPort();
  const primary = peers.spawn(
    'rtphub primary',
    process.execPath,
    [
      '--import', 'tsx', path.join(repo, 'test', 'helpers', 'rtphub-child.ts'),
      '--listen-ng=127.0.0.1:0', '--interface=127.0.0.1', `--port-min=${primaryMedia.min}`, `--port-max=${primaryMedia.max}`,
      '--num-threads=1', '--delete-delay=0', '--log-level=4',
      `--listen-sip=127.0.0.1:${primaryPort}`, `--proxy=sip:127.0.0.1:${kamailioPort}`, `--alternate-path=127.0.0.1:${backupPort}`,
    ],
    repo,
  );
  await waitForUdpPort(primary, primaryPort, 15000);

  await new Promise<void>((resolve) => rtp.bind(0, '127.0.0.1', resolve));
  const echoes: Buffer[] = [];
  rtp.on('message', (m) => echoes.push(m));
  const callId = `alt-${process.pid}@127.0.0.1`;
  const from = `<sip:ua@127.0.0.1:${ua.port}>;tag=uatag`;
  const sdp = `v=0\r\no=ua 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtp.address().port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
  const invite = request(
    'INVITE',
    `sip:callee@127.0.0.1:${uas.port}`,
    {
      Via: `SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${ua.newBranch()}`,
      'Max-Forwards': '70',
      From: from,
      To: `<sip:callee@127.0.0.1:${uas.port}>`,
      'Call-ID': callId,
      CSeq: '1 INVITE',
      Contact: `<sip:ua@127.0.0.1:${ua.port}>`,
    },
    sdp,
  );
  const ok = await ua.send(invite, [{ address: '127.0.0.1', port: primaryPort }], 5000);
  t.is(ok.status, 200, diagnostics(dir, [primary, kamailio, uas.process]));
  const dialog = dialogOf(invite, ok);
  t.is(dialog.routeSet.length, 2, 'the route set: the primary front, then Kamailio');
  t.regex(dialog.routeSet[0], new RegExp(`^<sip:127\\.0\\.0\\.1:${primaryPort};lr;alternatePath=127\\.0\\.0\\.1:${backupPort}>$`), 'the primary names its backup');
  const relay = /m=audio (\d+)/.exec(ok.body.toString())?.[1];
  t.truthy(relay, 'the answer carries the relay port');
  const mid = (method: string, cseq: number) =>
    request(method, dialog.remoteTarget, {
      Via: `SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${ua.newBranch()}`,
      Route: dialog.routeSet,
      'Max-Forwards': '70',
      From: from,
      To: `${header(ok, 'to')}`,
      'Call-ID': callId,
      CSeq: `${cseq} ${method === 'ACK' ? 'INVITE' : method}`,
    });
  ua.sendAck(mid('ACK', 1), hopsOf(dialog.routeSet[0])[0]);

  // media through the primary's relay: the callee echoes it back
  const packet = Buffer.alloc(172);
  packet[0] = 0x80;
  packet[1] = 8;
  for (let i = 0; i < 20; i++) {
    packet.writeUInt16BE(i, 2);
    rtp.send(packet, Number(relay), '127.0.0.1');
    await delay(20);
  }
  await waitFor(() => echoes.length > 0, 'RTP echoed back through the relay', 3000);

  await primary.stop(0);
  t.false(primary.running, 'the primary is gone');
  const bye = await ua.send(mid('BYE', 2), hopsOf(dialog.routeSet[0]), 1000);
  t.is(bye.status, 200, `the BYE succeeded through the backup\n${diagnostics(dir, [kamailio, uas.process], backup)}`);
  t.deepEqual(ua.sentTo.slice(-2), [`BYE 127.0.0.1:${primaryPort}`, `BYE 127.0.0.1:${backupPort}`], 'first the primary, then its alternatePath');
  t.true(backup.sip.counters.takeovers >= 1, 'the backup took the request over for the failed primary');
  t.is(headerValues(bye, 'via').length, 1, 'the response came back with only our Via');
  await waitFor(() => logged(uas.log, 'offer').length === 1, 'the callee saw the call', 1000);
  t.is(backup.sip.counters.internalErrors, 0);
});

test.serial('rtphub as the sender: a front whose next hop (a front with alternatePath) dies sends the re-INVITE, its ACK and the BYE to the backup', async (t) => {
  if (missing.length > 0) {
    t.log(`skipped: ${missing.join(' and ')} not installed (Debian packages kamailio and sip-tester)`);
    t.pass();
    return;
  }
  const dir = workDir('rtphub-sip-alternate2-');
  const peers = new PeerGroup();
  const fronts: Front[] = [];
  t.teardown(async () => {
    await peers.stopAll();
    for (const f of fronts) await f.running.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const uas = await startUas(peers, dir, 'uas', undefined, 'uas-hold.xml');
  const kamailioPort = await freeSipPort();
  const cfg = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfg, fs.readFileSync(path.join(fixtures, 'kamailio-proxy.cfg'), 'utf8').replaceAll('@SIP_PORT@', String(kamailioPort)));
  fs.mkdirSync(path.join(dir, 'run'));
  const kamailio = peers.spawn('kamailio', kamailioBinary, ['-DD', '-E', '-f', cfg, '-P', path.join(dir, 'run', 'k.pid'), '-Y', path.join(dir, 'run'), '-w', dir, '-m', '32', '-M', '4'], dir);
  await waitForSipProxy(kamailio, kamailioPort);
  // edge front → hub front (primary, alternatePath = backup) → Kamailio → callee
  const backupPort = await freeSipPort();
  const backup = await startFront({ min: 52950, max: 52999 }, [`--proxy=sip:127.0.0.1:${kamailioPort}`], backupPort);
  fronts.push(backup);
  const hub = await startFront({ min: 52900, max: 52949 }, [`--proxy=sip:127.0.0.1:${kamailioPort}`, `--alternate-path=127.0.0.1:${backupPort}`]);
  fronts.push(hub);
  const edge = await startFront({ min: 52800, max: 52899 }, [`--proxy=sip:127.0.0.1:${hub.port}`, '--proxy-timeout=300']);
  fronts.push(edge);
  // the caller re-INVITEs (hold) 2 s after its ACK, then hangs up: both after the hub front died
  const uac = await placeCalls(peers, dir, edge.port, { name: 'chain', calls: 1, rate: 1, durationMs: 2000, timeoutS: 20, target: `127.0.0.1:${uas.port}`, scenario: 'uac-hold.xml' });
  // the hub dies once the call is up and its ACK went through (a lost ACK would end the call)
  await waitFor(() => (hub.sip.counters.requests.ACK ?? 0) >= 1, 'the call to be up and ACKed through the hub front', 8000);
  await delay(100);
  await hub.running.stop();
  fronts.splice(fronts.indexOf(hub), 1);
  const exit = await uac.process.exitWithin(15000).catch((error: Error) => {
    throw new Error(`${error.message}\nbackup: ${JSON.stringify(backup.sip.counters)}\n${diagnostics(dir, [kamailio, uas.process], edge)}`);
  });
  t.is(exit.code, 0, `the call, re-INVITE and BYE included, completed\n${diagnostics(dir, [uac.process, kamailio, uas.process], edge)}`);
  t.true(edge.sip.counters.alternateRetries >= 2, `the edge front sent the re-INVITE and the BYE to the backup: ${JSON.stringify(edge.sip.counters)}`);
  t.like(backup.sip.counters.requests, { INVITE: 1, ACK: 1, BYE: 1 }, 'the backup saw the re-INVITE, its ACK (the hub known dead) and the BYE');
  t.true(backup.sip.counters.takeovers >= 2, 'the backup took them over for the dead hub front');
  const reanswer = logged(uac.log, 'reanswer');
  t.is(reanswer.length, 1, 'the caller got the answer to its re-INVITE');
  t.true(inRange(reanswer[0]?.text ?? '', { min: 52800, max: 52899 }), `re-anchored by the edge front: ${reanswer[0]?.text}`);
  await waitFor(() => !uas.process.running || logged(uas.log, 'reoffer').length === 1, 'the callee to see the re-INVITE', 3000);
  t.is(logged(uas.log, 'reoffer').length, 1);
  t.is(edge.running.calls.size, 0, 'the edge front ended the call on the BYE');
  t.is(edge.sip.counters.internalErrors + backup.sip.counters.internalErrors, 0);
});
