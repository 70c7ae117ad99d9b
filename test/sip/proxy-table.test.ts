// The proxy priority table of seed 000 (claims 33–37) alone: round-robin within the first level,
// a failed proxy skipped and the rest of its level tried, the next level when a level is
// exhausted, the return to the best level only after N answered probes in a row, and the
// parsing of --proxy values as the config schema splits them.
import test from 'ava';
import { loadConfig, parseConfigFile } from '../../src/config/load';
import { InvalidArgumentError } from '../../src/errors';
import { joinUriItems, parseProxySpec, parseProxySpecs } from '../../src/proxy-table/proxy-spec';
import { Proxy, ProxyTable } from '../../src/proxy-table/proxy-table';
import { ProxyProber } from '../../src/proxy-table/proxy-prober';

function table(specs: string[], returnAfter = 3): ProxyTable {
  return new ProxyTable(parseProxySpecs(specs), { returnAfter });
}

const names = (proxies: Array<Proxy | null>): string[] => proxies.map((p) => p?.spec.host ?? 'none');

/** One call: picks until a proxy that `answers` does, failing the others; returns who took it. */
function call(t: ProxyTable, answers: (p: Proxy) => boolean): Proxy | null {
  const tried = new Set<Proxy>();
  for (;;) {
    const p = t.pick(tried);
    if (!p) return null;
    tried.add(p);
    if (answers(p)) {
      t.answered(p);
      return p;
    }
    t.failed(p, 'timeout');
  }
}

test('--proxy values: the schema split on ; is undone, priority and transport read, defaults applied', (t) => {
  t.deepEqual(joinUriItems(['sip:10.0.0.1:5060', 'priority=2', 'sip:10.0.0.2', 'transport=tcp', 'proxyb']), [
    'sip:10.0.0.1:5060;priority=2',
    'sip:10.0.0.2;transport=tcp',
    'proxyb',
  ]);
  t.like(parseProxySpec('sip:10.0.0.1:5070;priority=2'), { host: '10.0.0.1', port: 5070, priority: 2, transport: 'udp', uri: 'sip:10.0.0.1:5070' });
  t.like(parseProxySpec('10.0.0.2;transport=tcp'), { port: 5060, priority: 1, transport: 'tcp' });
  t.throws(() => parseProxySpec('sip:user@10.0.0.1'), { instanceOf: InvalidArgumentError });
  t.throws(() => parseProxySpec('sip:10.0.0.1;priority=0'), { instanceOf: InvalidArgumentError });
  t.throws(() => parseProxySpecs(['sip:10.0.0.1', 'sip:10.0.0.1:5060']), { instanceOf: InvalidArgumentError });
});

test('--proxy from flags and from the config file give the same table', (t) => {
  const flags = loadConfig(['--proxy=sip:10.0.0.1:5060;priority=2', '--proxy=sip:10.0.0.2;transport=tcp', '--alternate-path=10.0.0.9:5060']);
  const file = parseConfigFile('[rtphub]\nproxy = sip:10.0.0.1:5060;priority=2, sip:10.0.0.2;transport=tcp\n', 'rtphub', 'test.conf');
  const expected = [
    { uri: 'sip:10.0.0.1:5060', host: '10.0.0.1', port: 5060, transport: 'udp', priority: 2 },
    { uri: 'sip:10.0.0.2:5060;transport=tcp', host: '10.0.0.2', port: 5060, transport: 'tcp', priority: 1 },
  ];
  t.deepEqual(parseProxySpecs(flags.proxy), expected);
  t.deepEqual(parseProxySpecs(file.proxy ?? []), expected);
  t.deepEqual(flags['alternate-path'], ['10.0.0.9:5060']);
  t.is(flags['proxy-timeout'], 500);
  t.is(flags['proxy-probe-interval'], 5000);
});

test('all up: calls go round-robin over the first level only', (t) => {
  const pt = table(['sip:a1;priority=1', 'sip:a2;priority=1', 'sip:a3;priority=1', 'sip:b1;priority=2']);
  const taken = Array.from({ length: 6 }, () => call(pt, () => true));
  t.deepEqual(names(taken), ['a1', 'a2', 'a3', 'a1', 'a2', 'a3']);
  t.is(pt.activeLevel(), 1);
});

test('a level-1 proxy that does not answer is skipped: the call goes to the next of the level, later calls avoid it', (t) => {
  const pt = table(['sip:a1', 'sip:a2', 'sip:b1;priority=2']);
  const dead = new Set(['a1']);
  const first = call(pt, (p) => !dead.has(p.spec.host));
  t.is(first?.spec.host, 'a2');
  t.is(pt.proxies[0].state, 'down');
  t.is(pt.proxies[0].counters.timeouts, 1);
  t.deepEqual(names(Array.from({ length: 3 }, () => call(pt, () => true))), ['a2', 'a2', 'a2']);
});

test('a whole level down: the table moves to level 2, round-robin there', (t) => {
  const pt = table(['sip:a1', 'sip:a2', 'sip:b1;priority=2', 'sip:b2;priority=2', 'sip:c1;priority=3']);
  const dead = new Set(['a1', 'a2']);
  const taken = Array.from({ length: 4 }, () => call(pt, (p) => !dead.has(p.spec.host)));
  t.deepEqual(names(taken), ['b1', 'b2', 'b1', 'b2']);
  t.is(pt.activeLevel(), 2);
  t.is(call(pt, (p) => p.spec.priority === 3)?.spec.host, 'c1', 'level 3 when level 2 fails too');
  t.is(call(pt, () => false), null, 'nothing left');
  t.is(pt.activeLevel(), null);
});

test('no proxy in service at all: the failed ones are still tried, the oldest failure first', (t) => {
  const pt = table(['sip:a1', 'sip:a2', 'sip:b1;priority=2']);
  const [a1, a2, b1] = pt.proxies;
  pt.failed(b1, 'timeout');
  a1.since = 0;
  pt.failed(a1, 'timeout');
  a1.since = 1;
  pt.failed(a2, 'transport');
  a2.since = 2;
  b1.since = 3;
  const tried = new Set<Proxy>();
  const order: Array<Proxy | null> = [];
  for (let p = pt.pick(tried); p; p = pt.pick(tried)) {
    tried.add(p);
    order.push(p);
  }
  t.deepEqual(names(order), ['a1', 'a2', 'b1']);
  pt.probed(b1, true);
  pt.probed(b1, true);
  pt.probed(b1, true);
  t.is(pt.pick()?.spec.host, 'b1', 'once one is back, only it is used');
  t.is(pt.pick(new Set([b1])), null);
});

test('a failed proxy returns only after N probes answered in a row; a missed probe restarts the count', (t) => {
  const pt = table(['sip:a1', 'sip:b1;priority=2'], 3);
  const [a1] = pt.proxies;
  pt.failed(a1, 'transport');
  t.is(pt.activeLevel(), 2);
  pt.probed(a1, true);
  pt.probed(a1, true);
  pt.probed(a1, false);
  pt.probed(a1, true);
  pt.probed(a1, true);
  t.is(a1.state, 'down', 'two in a row after a miss are not enough');
  pt.probed(a1, true);
  t.is(a1.state, 'up');
  t.is(pt.activeLevel(), 1, 'the table is back on the best level');
  t.is(call(pt, () => true)?.spec.host, 'a1');
  t.is(a1.counters.transportErrors, 1);
});

test('a proxy in service that misses a probe is taken out before a call has to time out on it', (t) => {
  const pt = table(['sip:a1', 'sip:a2']);
  pt.probed(pt.proxies[0], false);
  t.is(pt.proxies[0].state, 'down');
  t.deepEqual(names([call(pt, () => true), call(pt, () => true)]), ['a2', 'a2']);
});

test('state changes are reported once each', (t) => {
  const pt = table(['sip:a1'], 1);
  const seen: string[] = [];
  pt.onState((p, previous) => seen.push(`${p.spec.host}:${previous}->${p.state}`));
  pt.failed(pt.proxies[0], 'timeout');
  pt.failed(pt.proxies[0], 'timeout');
  pt.probed(pt.proxies[0], true);
  t.deepEqual(seen, ['a1:up->down', 'a1:down->up']);
});

test('the prober probes every proxy once per round and never twice at once', async (t) => {
  const pt = table(['sip:a1', 'sip:a2'], 1);
  pt.failed(pt.proxies[0], 'timeout');
  const calls: string[] = [];
  let release: (() => void) | undefined;
  const prober = new ProxyProber(
    pt,
    (p) => {
      calls.push(p.spec.host);
      return p.spec.host === 'a1' ? new Promise<boolean>((resolve) => (release = () => resolve(true))) : Promise.resolve(true);
    },
    60_000,
  );
  prober.start();
  prober.round();
  await new Promise((resolve) => setImmediate(resolve));
  prober.round();
  t.deepEqual(calls.sort(), ['a1', 'a2', 'a2'], 'a1 is still being probed: not probed again');
  release?.();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(pt.proxies[0].state, 'up');
  prober.stop();
});
