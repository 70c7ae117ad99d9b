// What a call record holds, from real calls on real sockets (rtphub in-process, records to a
// file:// target): tags, From/To labels, times, end reason, restoration-record version, codec,
// and per leg the native counters with the data plane's RFC 3550 loss and jitter; a record for a
// call ended by a media timeout, by a shutdown, and for a standby call dropped at a cold
// takeover; none for a call held for the peer relay. Media ports 32500..32755.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { ExecutionContext } from 'ava';
import pino from 'pino';
import { start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import type { HaNode } from '../../src/ha/ha-node';
import { CallDetailRecord } from '../../src/records/call-detail-record';
import { CallRecords } from '../../src/records/call-records';
import { FileCollector } from '../../src/records/file-collector';
import { Forwarder } from '../../src/records/forwarder';
import { Spool } from '../../src/records/spool';
import { rtp } from '../helpers/packets';
import { startRtphub } from '../helpers/rtphub';
import { Party } from '../helpers/udp';

const SDP = (port: number, session = '1'): Buffer =>
  Buffer.from(
    `v=0\r\no=- ${session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n`,
  );
const audioPort = (sdp: Buffer): number => Number(/m=audio (\d+)/.exec(sdp.toString())![1]);

function recordFile(t: ExecutionContext): { url: string; read(): CallDetailRecord[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtphub-record-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'records.jsonl');
  return {
    url: `file://${file}`,
    read: () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CallDetailRecord) : []),
  };
}

async function until<T>(value: () => T | undefined | null | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = value();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const slice = (n: number): [number, number] => [32500 + n * 64, 32500 + n * 64 + 63];

test('a call record carries tags, From/To, times, reason, version, codec and per-leg counters, loss and jitter', async (t) => {
  const out = recordFile(t);
  const h = await startRtphub(t, ...slice(0), [`--cdr-target=${out.url}`, '--endpoint-learning=immediate', '--delete-delay=0', '--ha-node-id=relay-r']);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const calls = h.running.calls;
  const offer = await calls.offer({ callId: 'rec-1', fromTag: 'alice-tag', sdp: SDP(a.port), labels: { from: 'sip:alice@example.com' } });
  const answer = await calls.answer({ callId: 'rec-1', fromTag: 'alice-tag', toTag: 'bob-tag', sdp: SDP(b.port, '2'), labels: { to: 'sip:bob@example.com' } });
  const toA = audioPort(answer);
  const toB = audioPort(offer);
  const media = calls.get('rec-1')!.media[0];
  const relay = { address: '127.0.0.1' };
  // the first packet of each side latches it, then the rest
  await a.send(rtp({ seq: 1, ssrc: 0xaaaa }), { ...relay, port: toA });
  await b.send(rtp({ seq: 65530, ssrc: 0xbbbb }), { ...relay, port: toB });
  await until(() => media.sides.a.learned && media.sides.b.learned, 'both sides learned');
  for (let seq = 2; seq <= 100; seq++) {
    if (seq > 10 && seq <= 20) continue; // ten packets lost on the way to the relay
    await a.send(rtp({ seq, ssrc: 0xaaaa }), { ...relay, port: toA });
    if (seq % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  for (let i = 1; i < 30; i++) await b.send(rtp({ seq: (65530 + i) & 0xffff, ssrc: 0xbbbb }), { ...relay, port: toB });
  await until(() => {
    const c = media.stream!.counters();
    return c.a.rtp_packets_in === 90 && c.b.rtp_packets_in === 30 && c.b.packets_out === 90;
  }, 'every packet relayed');
  const version = calls.get('rec-1')!.version;
  const reply = await h.request({ command: 'delete', 'call-id': 'rec-1', 'from-tag': 'alice-tag' });
  t.is(reply.result, 'ok');

  const [record] = await until(() => out.read().length === 1 && out.read(), 'the record in the file');
  t.is(Object.keys(record)[0], 'id', 'the idempotency key comes first');
  t.regex(record.id, /^[0-9a-f]{32}$/);
  t.like(record, {
    schema: 'rtphub.call-record/1',
    node: 'relay-r',
    relay_seq: 1,
    call_id: 'rec-1',
    from_tag: 'alice-tag',
    to_tag: 'bob-tag',
    from: 'sip:alice@example.com',
    to: 'sip:bob@example.com',
    end_reason: 'deleted',
    restoration_version: version,
  });
  t.true(version >= 2);
  t.truthy(record.answer);
  t.true(Date.parse(record.start) <= Date.parse(record.answer!) && Date.parse(record.answer!) <= Date.parse(record.end));
  t.true(record.duration_s >= record.answered_s!);
  t.is(record.streams.length, 1);
  const s = record.streams[0];
  t.deepEqual(s.codec, { name: 'PCMU', payload_type: 0, clock_rate: 8000, channels: null });
  t.like(s.legs.a, { rtp_packets_in: 90, rtp_bytes_in: 90 * 172, packets_out: 30, ssrc: 0xaaaa, remote: `127.0.0.1:${a.port}`, local: `127.0.0.1:${toA}` });
  t.deepEqual(s.legs.a.loss, { expected: 100, lost: 10, fraction: 0.1 });
  t.like(s.legs.b, { rtp_packets_in: 30, packets_out: 90, ssrc: 0xbbbb });
  t.deepEqual(s.legs.b.loss, { expected: 30, lost: 0, fraction: 0 }, 'the sequence number wrapped at 65535');
  // Sent back to back, 20 ms of RTP time apart: the jitter is most of those 20 ms.
  for (const leg of [s.legs.a, s.legs.b]) t.true(typeof leg.jitter_ms === 'number' && leg.jitter_ms > 5 && leg.jitter_ms <= 20, `jitter ${leg.jitter_ms} ms`);
});

test('a call whose media stops ends by timeout, and its record says so', async (t) => {
  const out = recordFile(t);
  const h = await startRtphub(t, ...slice(1), [`--cdr-target=${out.url}`, '--timeout=1']);
  await h.request({ command: 'offer', 'call-id': 'rec-timeout', 'from-tag': 'x', sdp: SDP(9000).toString() });
  await h.request({ command: 'answer', 'call-id': 'rec-timeout', 'from-tag': 'x', 'to-tag': 'y', sdp: SDP(9002).toString() });
  const [record] = await until(() => out.read().length === 1 && out.read(), 'the record', 6000);
  t.like(record, { call_id: 'rec-timeout', end_reason: 'timeout', to_tag: 'y', from: null, to: null });
  t.is(record.streams[0].legs.a.loss, null, 'no media: no loss figure');
});

test('calls ended by a shutdown get their records (written before the process stops)', async (t) => {
  const out = recordFile(t);
  const [portMin, portMax] = slice(2);
  const config = loadConfig(['--interface=127.0.0.1', '--listen-ng=127.0.0.1:0', `--port-min=${portMin}`, `--port-max=${portMax}`, '--num-threads=1', `--cdr-target=${out.url}`]);
  const running = await start(config, pino({ level: 'silent' }));
  let stopped = false;
  t.teardown(() => (stopped ? undefined : running.stop()));
  for (const id of ['live-1', 'live-2']) await running.calls.offer({ callId: id, fromTag: 'f', sdp: SDP(9000) });
  await running.stop();
  stopped = true;
  const records = out.read();
  t.deepEqual(records.map((r) => [r.call_id, r.end_reason]).sort(), [
    ['live-1', 'shutdown'],
    ['live-2', 'shutdown'],
  ]);
});

test('a standby call dropped at a cold takeover gets a record; a standby call that ends otherwise does not', async (t) => {
  const out = recordFile(t);
  const h = await startRtphub(t, ...slice(3), ['--delete-delay=0']);
  const calls = h.running.calls;
  const ha = new EventEmitter();
  const spool = new Spool({ dir: null, maxBytes: 1 << 20, maxMemoryRecords: 1000, fsyncMs: 10, spoolAfterMs: 1000 });
  await spool.open();
  const forwarder = new Forwarder({ label: out.url, collector: new FileCollector(new URL(out.url)), spool, batch: 100, retryMs: 50, timeoutMs: 1000 });
  const records = new CallRecords({
    calls,
    relay: h.running.relay,
    node: 'relay-cold',
    forwarders: [forwarder],
    log: pino({ level: 'silent' }),
    closeGraceMs: 1000,
    sampleMs: 10,
    ha: () => ha as unknown as HaNode,
  });
  t.teardown(() => records.close());
  for (const id of ['peer-1', 'peer-2']) {
    await calls.offer({ callId: id, fromTag: 'f', sdp: SDP(9000) });
    calls.get(id)!.standby = true; // held for the peer relay, as a replicated call is
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // several sampling rounds: the standby calls are known
  await calls.forget('peer-1'); // the peer ended it (its own record covers it)
  await calls.forget('peer-2'); // cold takeover: dropped
  ha.emit('dropped', ['peer-2']);
  await h.request({ command: 'delete', 'call-id': 'peer-1', 'from-tag': 'f' }); // already gone here
  const written = await until(() => out.read().length > 0 && out.read(), 'the record');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(
    out.read().map((r) => [r.call_id, r.end_reason]),
    [['peer-2', 'takeover-dropped']],
  );
  t.is(written[0].node, 'relay-cold');
});
