/**
 * Micro-benchmark of the SDP work an ng `offer` or `answer` does in the call model:
 * `parseSdp` then `rewriteSdp` (src/sdp) on the control-rate benchmark's typical audio
 * offer (G.711, G.722, G.729, telephone-event) and its answer, with Kamailio's usual
 * options (replace origin and session-connection, ICE remove). The last two rows split
 * the cost between parsing (one pass over the lines) and rewriting (editing those lines).
 * Run: `npx tsx bench/micro/sdp-rewrite.bench.ts` (prints one line per case and a table).
 */
import Benchmark from 'benchmark';
import { parseSdp } from '../../src/sdp/parse';
import { rewriteSdp, type RewriteOptions } from '../../src/sdp/rewrite';
import { ANSWER_SDP, OFFER_SDP } from '../load/control/requests';

const offerBytes = Buffer.from(OFFER_SDP, 'latin1');
const answerBytes = Buffer.from(ANSWER_SDP, 'latin1');

const options: RewriteOptions = {
  media: [{ address: '203.0.113.7', port: 30000, rtcpPort: 30001, rtcpMux: false }],
  replace: ['origin', 'session-connection'],
  ice: 'remove',
};

const parsedOffer = parseSdp(offerBytes);

/** Fails early if the SDP or the options stop being accepted, rather than timing an exception. */
function check(): void {
  const out = rewriteSdp(parseSdp(offerBytes), options).toString('latin1');
  if (!out.includes('m=audio 30000 ') || !out.includes('c=IN IP4 203.0.113.7')) throw new Error(`unexpected rewrite:\n${out}`);
}

export function run(): Promise<void> {
  check();
  return new Promise((resolve) => {
    const suite = new Benchmark.Suite('sdp-rewrite');
    const rows: Array<{ name: string; opsPerSec: number; usPerOp: number; rme: number }> = [];
    suite
      .add(`parseSdp + rewriteSdp, offer (${offerBytes.length} B)`, () => rewriteSdp(parseSdp(offerBytes), options))
      .add(`parseSdp + rewriteSdp, answer (${answerBytes.length} B)`, () => rewriteSdp(parseSdp(answerBytes), options))
      .add('parseSdp, offer', () => parseSdp(offerBytes))
      .add('rewriteSdp of a parsed offer', () => rewriteSdp(parsedOffer, options))
      .on('cycle', (ev: Benchmark.Event) => {
        const b = ev.target as unknown as Benchmark & { name: string };
        rows.push({ name: b.name, opsPerSec: Math.round(b.hz), usPerOp: Number((1e6 / b.hz).toFixed(2)), rme: Number(b.stats.rme.toFixed(2)) });
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
