/**
 * Micro-benchmark of the ng bencode codec on a typical Kamailio `offer` and its reply.
 * Run: `npx tsx bench/micro/bencode.bench.ts` (prints one line per case and a table).
 */
import Benchmark from 'benchmark';
import { decode, encode } from '../../src/ng/bencode';

const SDP = [
  'v=0',
  'o=- 1545997027 1 IN IP4 198.51.100.1',
  's=tester',
  'c=IN IP4 198.51.100.1',
  't=0 0',
  'm=audio 2000 RTP/AVP 0 8 9 18 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:18 G729/8000',
  'a=fmtp:18 annexb=no',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

const offer = {
  sdp: SDP,
  'call-id': 'a84b4c76e66710@pc33.atlanta.example.com',
  'from-tag': '1928301774',
  'via-branch': 'z9hG4bK776asdhds.0',
  'received-from': ['IP4', '198.51.100.1'],
  flags: ['trust-address', 'symmetric'],
  replace: ['origin', 'session-connection'],
  ICE: 'remove',
  'rtcp-mux': ['demux'],
  command: 'offer',
};
const reply = { result: 'ok', sdp: SDP.replace(/198\.51\.100\.1/g, '203.0.113.7') };

const offerBytes = encode(offer);
const replyBytes = encode(reply);

export function run(): Promise<void> {
  return new Promise((resolve) => {
    const suite = new Benchmark.Suite('bencode');
    const rows: Array<{ name: string; opsPerSec: number; rme: number }> = [];
    suite
      .add(`encode offer (${offerBytes.length} B)`, () => encode(offer))
      .add(`decode offer (${offerBytes.length} B)`, () => decode(offerBytes))
      .add(`encode reply (${replyBytes.length} B)`, () => encode(reply))
      .add(`decode reply (${replyBytes.length} B)`, () => decode(replyBytes))
      .add('JSON.stringify offer (reference)', () => JSON.stringify(offer))
      .on('cycle', (ev: Benchmark.Event) => {
        const b = ev.target as unknown as Benchmark & { name: string };
        rows.push({ name: b.name, opsPerSec: Math.round(b.hz), rme: Number(b.stats.rme.toFixed(2)) });
        console.log(String(ev.target));
      })
      .on('complete', () => {
        console.table(rows);
        resolve();
      })
      .run({ async: true });
  });
}

if (require.main === module) void run();
