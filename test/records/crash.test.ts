// The spool across a SIGKILL of a real rtphub process: with its collector away, 2,000 call
// records go to the spool; once the process says they are acknowledged (fsynced, per its
// metrics) it is killed with SIGKILL, a torn write is left at the tail of the last segment (as a
// crash mid-append would), and a new rtphub on the same spool, with the collector back, drains
// the spool: every acknowledged record arrives, once, in order; the torn tail is cut and
// counted. Media ports 32400..32463.
import { ChildProcess, fork } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { ExecutionContext } from 'ava';
import { NgClient } from '../../src/ng/client';
import { outOfOrder, TestCollector } from './test-collector';

const SDP = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0\r\na=sendrecv\r\n`;

async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const { port } = socket.address();
    socket.close();
    return port;
  }
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function until<T>(value: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await value();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function rtphub(t: ExecutionContext, flags: string[]): ChildProcess {
  // the relays' log, kept when the test fails
  const file = path.join(os.tmpdir(), `rtphub-records-crash-${process.pid}.log`);
  const log = fs.openSync(file, 'a');
  t.teardown(() => {
    fs.closeSync(log);
    if (t.passed) fs.rmSync(file, { force: true });
  });
  const child = fork(path.join(__dirname, '..', 'helpers', 'rtphub-child.ts'), flags, { execArgv: ['--import', 'tsx'], stdio: ['ignore', log, log, 'ipc'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

async function metric(port: number, pattern: RegExp): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = pattern.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

test('SIGKILL with a spool full of records and a torn tail: a restart drains it, nothing acknowledged lost', async (t) => {
  const collector = await TestCollector.start(t);
  await collector.down(); // the port stays ours: the relay is refused until it is back
  const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtphub-crash-spool-'));
  t.teardown(() => fs.rmSync(spoolDir, { recursive: true, force: true }));
  const [ngPort, httpPort] = [await freePort('udp'), await freePort('tcp')];
  const flags = [
    '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${ngPort}`,
    `--listen-http=127.0.0.1:${httpPort}`,
    '--port-min=32400',
    '--port-max=32463',
    '--num-threads=1',
    '--coalesce-us=0',
    '--delete-delay=0',
    `--cdr-target=${collector.url}`,
    `--spool-dir=${spoolDir}`,
    '--cdr-retry-ms=50',
    '--ha-node-id=relay-crash',
    '--log-level=4',
  ];
  const first = rtphub(t, flags);
  const client = new NgClient({ host: '127.0.0.1', port: ngPort, timeoutMs: 300, attempts: 60 });
  t.teardown(() => client.close());
  await client.request({ command: 'ping' });

  const N = 2000;
  let next = 0;
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      for (let i = next++; i < N; i = next++) {
        await client.request({ command: 'offer', 'call-id': `crash-${i}`, 'from-tag': 'f', sdp: SDP });
        await client.request({ command: 'delete', 'call-id': `crash-${i}`, 'from-tag': 'f' });
      }
    }),
  );
  const spooled = /^rtphub_records_spooled_total\{target="[^"]+"\} (\d+)$/m;
  await until(async () => (await metric(httpPort, spooled)) === N, 'every record acknowledged (fsynced in the spool)');
  first.kill('SIGKILL');
  await until(() => first.signalCode === 'SIGKILL', 'the relay killed');

  const target = fs.readdirSync(spoolDir)[0];
  const segments = fs.readdirSync(path.join(spoolDir, target)).filter((n) => n.startsWith('seg-')).sort();
  t.true(segments.length > 0);
  t.true(fs.existsSync(path.join(spoolDir, target, 'lock')), 'the dead process left its lock');
  fs.appendFileSync(path.join(spoolDir, target, segments[segments.length - 1]), `${N + 1} ${Date.now()} 0123abcd {"id":"torn","call_id":"to`);

  await collector.up();
  rtphub(t, flags);
  await until(() => collector.records.length >= N, 'the spool drained into the collector', 30_000);
  t.is(collector.records.length, N, 'every acknowledged record, and nothing else');
  t.deepEqual(new Set(collector.records.map((r) => r.call_id)), new Set(Array.from({ length: N }, (_, i) => `crash-${i}`)));
  t.is(outOfOrder(collector.records), null);
  const torn = /^rtphub_records_spool_damaged_total\{target="[^"]+",kind="torn"\} (\d+)$/m;
  t.is(await until(() => metric(httpPort, torn), 'the metrics of the new process'), 1, 'the torn tail was found and counted');
  await until(async () => (await metric(httpPort, /^rtphub_records_spool_bytes\{target="[^"]+"\} (\d+)$/m)) === 0, 'the drained spool deleted');
});
