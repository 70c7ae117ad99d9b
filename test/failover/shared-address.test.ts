// The shared address held on `lo` by both relays (shared-address.ts, `held`), answered only by the
// active one, and the keep-alive thread's own evidence that a peer's process is gone.
//
// - In a real lab (namespaces, two rtphub processes): both relays hold the address on `lo`; only
//   the active one's interface answers ARP for it (arp_ignore 0; the standby's 1), so a caller
//   that asks resolves it to the active relay's hardware address. When the active relay is killed
//   the standby answers and announces it: the caller's cache follows with no request of its own.
//   A relay that comes back holds the address again without answering for it.
// - On loopback, two keep-alive threads: when one's process side closes its socket, the other's
//   next keep-alive is refused (ICMP port unreachable) and the peer is lost well before `missed`
//   intervals; an operator destroying the keep-alive socket (`ss -K`) does not stop the stream.
import test from 'ava';
import { FailoverLab, VIP } from '../../bench/load/failover/lab';
import { KeepAlive, type KeepAliveMessage, type Loss } from '../../src/ha/keepalive';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function arpIgnore(lab: FailoverLab, host: string): Promise<number> {
  return Number((await lab.net.exec(host, 'cat', ['/proc/sys/net/ipv4/conf/eth0/arp_ignore'])).trim());
}

async function mac(lab: FailoverLab, host: string): Promise<string> {
  return (await lab.net.exec(host, 'cat', ['/sys/class/net/eth0/address'])).trim();
}

/** The caller's neighbour entry for the shared address (its hardware address), '' if none. */
async function callerSees(lab: FailoverLab): Promise<string> {
  const line = await lab.net.exec('caller', 'ip', ['neigh', 'show', VIP, 'dev', 'eth0']);
  return /lladdr (\S+)/.exec(line)?.[1] ?? '';
}

/** Forgets the shared address's entry in the caller and resolves it again (ARP request). */
async function resolveFresh(lab: FailoverLab): Promise<string> {
  await lab.net.exec('caller', 'ip', ['neigh', 'flush', 'dev', 'eth0']);
  await lab.net.exec('caller', 'ping', ['-c', '1', '-W', '2', VIP]);
  return callerSees(lab);
}

test.serial('the shared address is held on lo by both relays and answered by the active one only', async (t) => {
  t.timeout(90_000);
  const lab = await FailoverLab.create({ calls: 4, nice: -10, missed: 10 });
  try {
    const [macA, macB] = [await mac(lab, 'a'), await mac(lab, 'b')];
    for (const host of ['a', 'b']) {
      t.regex(await lab.net.exec(host, 'ip', ['-o', 'address', 'show', 'dev', 'lo']), new RegExp(`${VIP.replace(/\./g, '\\.')}/32`), `${host} holds it on lo`);
      t.is((await lab.ha(host as 'a' | 'b'))['shared address'], 'held');
      const announce = (await lab.net.exec(host, 'cat', ['/proc/sys/net/ipv4/conf/eth0/arp_announce'])).trim();
      t.is(announce, '2', `${host}'s ARP requests never name the shared address`);
    }
    t.is(await arpIgnore(lab, 'a'), 0, 'the active relay answers ARP for it');
    t.is(await arpIgnore(lab, 'b'), 1, 'the standby does not');
    t.is(await resolveFresh(lab), macA, 'a caller resolves it to the active relay');
    t.is(await resolveFresh(lab), macA, 'again: the standby never answers');

    await lab.killRelay('a');
    await lab.waitFor(async () => (await lab.ha('b')).role === 'active', 'relay b taking over', 10_000);
    t.is(await arpIgnore(lab, 'b'), 0);
    t.is(await callerSees(lab), macB, 'the announcement moved the caller without a request of its own');

    // A killed relay's namespace still answers (its kernel holds the address): the returning
    // relay must stop that before anything else.
    await lab.startRelay('a', 'auto');
    await lab.waitFor(async () => (await lab.ha('a')).role === 'standby', 'relay a back on standby', 10_000);
    t.is(await arpIgnore(lab, 'a'), 1, 'the returning relay does not answer for it');
    t.is(await resolveFresh(lab), macB, 'a caller still resolves it to the active relay');
  } finally {
    await lab.destroy();
  }
});

interface Pair {
  /** The standby's keep-alive port. */
  standbyPort: number;
  active: KeepAlive;
  standby: KeepAlive;
  /** The standby's losses of its peer. */
  losses: Array<{ peer: KeepAliveMessage; loss: Loss }>;
}

/** Two keep-alive threads on loopback; `missed` intervals of 20 ms before a silent peer is lost. */
async function pair(missed: number): Promise<Pair> {
  const message = (node: string, role: 'active' | 'standby'): KeepAliveMessage => ({ node, epoch: 1, role, priority: 100, sessions: 0, load: 0, handover: false });
  // Two free ports: bind, read, release (the keep-alive threads bind them again at once).
  const ports = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<number>((resolve) => {
          const s = dgram.createSocket('udp4');
          s.bind(0, '127.0.0.1', () => {
            const port = s.address().port;
            s.close(() => resolve(port));
          });
        }),
    ),
  );
  const options = (me: number, peer: number, node: string, role: 'active' | 'standby') => ({
    listen: { address: '127.0.0.1', port: me },
    peer: { host: '127.0.0.1', port: peer },
    intervalMs: 20,
    missed,
    state: () => message(node, role),
  });
  const active = new KeepAlive(options(ports[0], ports[1], 'ka-a', 'active'));
  const standby = new KeepAlive(options(ports[1], ports[0], 'ka-b', 'standby'));
  const losses: Pair['losses'] = [];
  standby.on('lost', (peer, loss) => losses.push({ peer, loss }));
  await Promise.all([active.start(), standby.start()]);
  const deadline = Date.now() + 5000;
  while (!standby.peerAlive && Date.now() < deadline) await sleep(20);
  return { standbyPort: ports[1], active, standby, losses };
}

test.serial('a peer whose keep-alive socket is gone is lost at its first refused keep-alive, not after missed intervals', async (t) => {
  const missed = 25;
  const { active, standby, losses } = await pair(missed);
  try {
    t.true(standby.peerAlive, 'the standby hears the active peer');
    await sleep(200);
    active.close();
    const deadline = Date.now() + 3000;
    while (losses.length === 0 && Date.now() < deadline) await sleep(5);
    t.is(losses.length, 1);
    t.is(losses[0].peer.node, 'ka-a');
    t.true(losses[0].loss.suspected, 'lost on the refusal');
    t.true(losses[0].loss.silentMs < missed * 20, `lost after ${losses[0].loss.silentMs} ms of silence, not ${missed * 20}`);
    t.true(standby.stats.refused >= 1);
    t.log(`lost after ${losses[0].loss.silentMs} ms of silence (limit without the refusal: ${missed * 20} ms)`);
  } finally {
    active.close();
    standby.close();
  }
});

test.serial('destroying the keep-alive socket (ss -K) does not interrupt the keep-alives', async (t) => {
  const { standbyPort, active, standby, losses } = await pair(10);
  try {
    t.true(standby.peerAlive);
    // Every UDP socket connected to the standby's port on loopback: the active side's sender only.
    await promisify(execFile)('ss', ['-K', '-u', 'dst', '127.0.0.1', 'dport', '=', String(standbyPort)]);
    const before = standby.stats.received;
    await sleep(1500);
    t.deepEqual(losses, [], 'the peer was never lost');
    t.true(standby.stats.received - before >= 40, `${standby.stats.received - before} keep-alives heard in 1.5 s`);
  } finally {
    active.close();
    standby.close();
  }
});
