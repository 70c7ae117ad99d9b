// Shared by the SIP front's tests: rtphub started in this process with its SIP front, SIPp
// stand-in proxies (test/fixtures/sip/uas.xml, answering OPTIONS probes with -aa and echoing
// RTP) and SIPp callers (uac.xml) sent to the front, and readers of what they logged. Ports:
// SIP in 51000..51999 (free ones picked at random), SIPp media in 53000..53999; each test file
// gives its relay its own media range in 52000..52999.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Running, start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import type { SipFront } from '../../src/sip/front';
import { freeUdpPort, installed, PeerGroup, PeerProcess, sippBinary, waitForUdpPort } from '../helpers/sip-peers';
import { delay } from '../helpers/wait';

export const fixtures = path.join(__dirname, '..', 'fixtures', 'sip');
export const sipPorts = { min: 51000, max: 51999 };
const sippMediaPorts = { min: 53000, max: 53996 };

export interface Front {
  running: Running;
  sip: SipFront;
  port: number;
  log: string[];
}

export function workDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // 50 frames of A-law silence: the UAC plays it in a loop, one 160-byte frame per 20 ms.
  fs.writeFileSync(path.join(dir, 'silence.alaw'), Buffer.alloc(8000, 0xd5));
  return dir;
}

export const sippMissing = !installed(sippBinary);

export async function freeSipPort(): Promise<number> {
  return freeUdpPort(sipPorts.min, sipPorts.max);
}

/** rtphub with its SIP front on a free port, media in `media`, delete delay 0. */
export async function startFront(media: { min: number; max: number }, flags: string[], sipPort?: number): Promise<Front> {
  const port = sipPort ?? (await freeSipPort());
  const log: string[] = [];
  const config = loadConfig([
    '--listen-ng=127.0.0.1:0',
    '--interface=127.0.0.1',
    `--port-min=${media.min}`,
    `--port-max=${media.max}`,
    '--delete-delay=0',
    '--num-threads=1',
    `--listen-sip=127.0.0.1:${port}`,
    ...flags,
  ]);
  const running = await start(config, pino({ level: 'info' }, { write: (line: string) => void log.push(line) }));
  if (!running.sip) throw new Error('the SIP front did not start');
  return { running, sip: running.sip, port, log };
}

export interface Uas {
  process: PeerProcess;
  port: number;
  log: string;
}

/** A stand-in proxy (SIPp UAS) on `port` (or a free one). */
export async function startUas(peers: PeerGroup, dir: string, name: string, port?: number, scenario = 'uas.xml'): Promise<Uas> {
  const sipPort = port ?? (await freeSipPort());
  const media = await freeUdpPort(sippMediaPorts.min, sippMediaPorts.max, 2, [0, 2]);
  const log = path.join(dir, `${name}-logs.log`);
  const process = peers.spawn(
    `sipp ${name}`,
    sippBinary,
    [
      '-sf', path.join(fixtures, scenario),
      '-i', '127.0.0.1', '-p', String(sipPort),
      '-mi', '127.0.0.1', '-mp', String(media), '-rtp_echo',
      '-aa', '-nostdin', '-timeout', '110s',
      '-trace_logs', '-log_file', log,
      '-trace_err', '-error_file', path.join(dir, `${name}-errors.log`),
    ],
    dir,
  );
  await waitForUdpPort(process, sipPort);
  return { process, port: sipPort, log };
}

export interface CallOptions {
  name: string;
  calls: number;
  rate: number;
  durationMs: number;
  timeoutS: number;
  /** Calls in flight at most (default: all). */
  limit?: number;
  /** HOST:PORT of the Request-URI (default: the front; the table decides anyway). */
  target?: string;
  /** SIPp transport mode: u1 (UDP, default) or t1 (one TCP connection). */
  transport?: 'u1' | 't1';
  /** Scenario in test/fixtures/sip (default uac.xml). */
  scenario?: string;
}

export interface Uac {
  process: PeerProcess;
  log: string;
  rtt: () => number[];
}

/** A SIPp caller placing calls through the front (the Request-URI names a stand-in; the table decides). */
export async function placeCalls(peers: PeerGroup, dir: string, frontPort: number, o: CallOptions): Promise<Uac> {
  const log = path.join(dir, `${o.name}-logs.log`);
  const sipPort = await freeSipPort();
  const media = await freeUdpPort(sippMediaPorts.min, sippMediaPorts.max, 2, [0, 2]);
  const process = peers.spawn(
    `sipp uac ${o.name}`,
    sippBinary,
    [
      o.target ?? `127.0.0.1:${frontPort}`,
      '-sf', path.join(fixtures, o.scenario ?? 'uac.xml'),
      '-s', o.name,
      '-i', '127.0.0.1', '-p', String(sipPort),
      '-rsa', `127.0.0.1:${frontPort}`,
      '-mi', '127.0.0.1', '-mp', String(media),
      '-m', String(o.calls), '-l', String(o.limit ?? o.calls), '-r', String(o.rate),
      '-d', String(o.durationMs),
      '-t', o.transport ?? 'u1',
      '-nostdin', '-timeout', `${o.timeoutS}s`, '-timeout_error',
      '-trace_logs', '-log_file', log,
      '-trace_rtt', '-rtt_freq', '1',
      '-trace_err', '-error_file', path.join(dir, `${o.name}-errors.log`),
    ],
    dir,
  );
  // SIPp names the RTT file after the scenario and its own pid
  const rtt = (): number[] => {
    const file = path.join(dir, `${path.basename(o.scenario ?? 'uac.xml', '.xml')}_${process.pid}_rtt.csv`);
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(';')[1]))
      .filter((ms) => Number.isFinite(ms) && ms > 0);
  };
  return { process, log, rtt };
}

export interface Logged {
  callId: string;
  text: string;
}

/** Lines `<word> <call-id> <rest>` a scenario's <log> actions wrote. */
export function logged(file: string, word: string): Logged[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const m = new RegExp(`^${word} (\\S+)(?: (.*))?$`).exec(line.trim());
      return m ? [{ callId: m[1], text: m[2] ?? '' }] : [];
    });
}

/** Everything worth reading when calls fail. */
export function diagnostics(dir: string, processes: PeerProcess[], front?: Front): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('errors.log'));
  return [
    ...processes.map((p) => p.output(2048)),
    ...files.map((f) => `--- ${f} ---\n${fs.readFileSync(path.join(dir, f), 'utf8').slice(-2048)}`),
    front ? `--- rtphub log ---\n${front.log.slice(-15).join('')}\ncounters ${JSON.stringify(front.sip.counters)}` : '',
  ].join('\n');
}

/**
 * Polls the relay until `uac` exits: for every call seen, whether RTP arrived from both
 * parties while it was up; and the most calls up at once.
 */
export async function watchMedia(front: Front, uac: PeerProcess): Promise<{ bothWays: Map<string, boolean>; peak: number }> {
  const bothWays = new Map<string, boolean>();
  let peak = 0;
  while (uac.running) {
    peak = Math.max(peak, front.running.calls.size);
    for (const call of front.running.calls.calls.values()) {
      if (bothWays.get(call.callId)) continue;
      const stream = call.media[0]?.stream;
      let ok = false;
      try {
        const c = stream?.counters();
        ok = !!c && c.a.rtp_packets_in > 0 && c.b.rtp_packets_in > 0;
      } catch {
        ok = false;
      }
      bothWays.set(call.callId, ok);
    }
    await delay(50);
  }
  return { bothWays, peak };
}

export function inRange(text: string, range: { min: number; max: number }): boolean {
  const m = /c=IN IP4 (\S+) m=audio (\d+)/.exec(text);
  return !!m && m[1] === '127.0.0.1' && Number(m[2]) >= range.min && Number(m[2]) <= range.max;
}
