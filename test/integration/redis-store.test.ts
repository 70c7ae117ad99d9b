// Many relays sharing Redis: each writes its calls' restoration records there under its lease;
// when a relay dies (SIGKILL of a real rtphub process), another relay of the group adopts its
// calls (fenced: only once the dead relay's lease expired) and the media resumes through it on
// the same address and ports.
import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import Redis from 'ioredis';
import { NgClient } from '../../src/ng/client';
import { rtp } from '../helpers/packets';
import { redisInstalled, startRedis } from '../helpers/redis';
import { startRtphub } from '../helpers/rtphub';
import { Party } from '../helpers/udp';

const CALLS = 20;
const LEASE_MS = 1500;

function sdp(port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=sendrecv\r\n`;
}

const portOf = (body: Buffer): number => Number(/m=audio (\d+)/.exec(body.toString())![1]);

function startChild(flags: string[]): ChildProcess {
  const log = fs.openSync(path.join(os.tmpdir(), `rtphub-redis-test-${process.pid}.log`), 'w');
  return fork(path.join(__dirname, '..', 'helpers', 'rtphub-child.ts'), flags, { execArgv: ['--import', 'tsx'], stdio: ['ignore', log, log, 'ipc'] });
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('a relay of the group adopts the calls of a relay that died, and their media resumes', async (t) => {
  if (!redisInstalled) {
    t.log('redis-server is not installed: skipped (CI installs it)');
    t.pass();
    return;
  }
  const url = await startRedis(t);
  const ngPort = 47900 + (process.pid % 50);
  const relayA = startChild([
    '--interface=127.0.0.2',
    `--listen-ng=127.0.0.1:${ngPort}`,
    '--port-min=47500',
    '--port-max=47599',
    '--num-threads=1',
    `--redis=${url}`,
    `--redis-lease-ms=${LEASE_MS}`,
    '--ha-node-id=relay-a',
    '--endpoint-learning=off',
    '--log-level=4',
  ]);
  t.teardown(() => {
    if (relayA.exitCode === null && relayA.signalCode === null) relayA.kill('SIGKILL');
  });
  const client = new NgClient({ host: '127.0.0.1', port: ngPort, timeoutMs: 300, attempts: 60 });
  t.teardown(() => client.close());
  await client.request({ command: 'ping' });

  const calls: Array<{ caller: Party; callee: Party; toCaller: number; toCallee: number }> = [];
  for (let i = 0; i < CALLS; i++) {
    const [caller, callee] = [await Party.open(t), await Party.open(t)];
    const offer = await client.request({ command: 'offer', 'call-id': `call-${i}`, 'from-tag': `ft${i}`, sdp: sdp(caller.endpoint.port) });
    const answer = await client.request({ command: 'answer', 'call-id': `call-${i}`, 'from-tag': `ft${i}`, 'to-tag': `tt${i}`, sdp: sdp(callee.endpoint.port) });
    calls.push({ caller, callee, toCallee: portOf(offer.sdp as Buffer), toCaller: portOf(answer.sdp as Buffer) });
  }
  const redis = new Redis(url);
  t.teardown(() => redis.disconnect());
  await until(async () => (await redis.scard('rtphub:owner:relay-a')) === CALLS, 5000, 'every record written');

  // Every relay of a group uses the same port range: an adopted call keeps its address and ports.
  const relayB = await startRtphub(t, 47500, 47599, [
    '--interface=127.0.0.3',
    '--interface=127.0.0.2',
    `--redis=${url}`,
    `--redis-lease-ms=${LEASE_MS}`,
    '--ha-node-id=relay-b',
  ]);
  const store = relayB.running.store!;
  t.is(store.stats.adoptedCalls, 0, 'nothing adopted while relay A is alive');

  relayA.kill('SIGKILL');
  await until(() => store.stats.adoptedCalls + Object.keys(store.stats.unrestored).length > 0, 10_000, 'relay B adopted relay A');
  t.deepEqual(store.stats.unrestored, {}, 'every call restored');
  t.is(store.stats.adoptedCalls, CALLS);
  t.is(await redis.scard('rtphub:owner:relay-b'), CALLS);
  t.is(await redis.exists('rtphub:owner:relay-a'), 0);

  for (const call of calls) {
    const packet = rtp({ seq: 7 });
    await call.caller.send(packet, { address: '127.0.0.2', port: call.toCaller });
    t.deepEqual((await call.callee.receive()).data, packet, 'caller to callee through relay B');
    await call.callee.send(packet, { address: '127.0.0.2', port: call.toCallee });
    t.deepEqual((await call.caller.receive()).data, packet, 'callee to caller through relay B');
  }
  t.is(relayB.running.calls.size, CALLS);
});
