/**
 * rtpengine from Debian as a relay under test. Started in the foreground (never
 * daemonized) with kernel forwarding off (`--table=-1`), one worker thread, endpoint
 * learning off (it sends to the signalled addresses, like the other relays here), and
 * an ng socket on a free loopback port. Each call is an ng `offer` (SDP pointing at the
 * generator's caller socket) and `answer` (callee socket); the ports are read back from
 * the returned SDPs. Stopped by SIGTERM to its PID, then SIGKILL.
 */
import { existsSync } from 'node:fs';
import { asText, type BDict } from '../../../src/ng/bencode';
import { GuardedChild } from '../child';
import { CheckedNgClient, freeUdpPort, waitForPong } from '../ng-client';
import type { CallEndpoints, LaunchSettings, RelayPorts, RelayUnderTest, RunningRelay } from './relay';

const RTPENGINE = '/usr/bin/rtpengine';
const STARTUP_TIMEOUT_MS = 10_000;
const SETUP_CONCURRENCY = 16;

export class RtpengineRelay implements RelayUnderTest {
  readonly name = 'rtpengine';
  readonly family = 'rtpengine';

  constructor(private readonly launch: LaunchSettings) {}

  unavailableReason(): string | null {
    return existsSync(RTPENGINE) ? null : `${RTPENGINE} not installed (apt-get install rtpengine-daemon)`;
  }

  async start(): Promise<RunningRelay> {
    const ngPort = await freeUdpPort();
    const child = GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: this.launch.maxSeconds,
      guard: this.launch.guard,
      command: RTPENGINE,
      args: rtpengineArgs(ngPort, this.launch),
      label: this.name,
    });
    try {
      const ng = new CheckedNgClient(ngPort);
      await waitForPong(ng, child, STARTUP_TIMEOUT_MS);
      return new RunningRtpengine(child, ng, this.launch);
    } catch (err) {
      await child.stop(null);
      throw err;
    }
  }
}

/** The exact command line (also printed in the report's header). */
export function rtpengineArgs(ngPort: number, launch: LaunchSettings): string[] {
  return [
    '--config-file=none',
    '--foreground',
    '--table=-1',
    `--interface=${launch.mediaAddress ?? '127.0.0.1'}`,
    `--listen-ng=127.0.0.1:${ngPort}`,
    `--port-min=${launch.portMin}`,
    `--port-max=${launch.portMax}`,
    '--num-threads=1',
    '--endpoint-learning=off',
    '--log-stderr',
    '--log-level=4',
  ];
}

class RunningRtpengine implements RunningRelay {
  readonly batches = true;
  private callCount = 0;

  constructor(
    private readonly child: GuardedChild,
    private readonly ng: CheckedNgClient,
    private readonly launch: LaunchSettings,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  async createCalls(calls: CallEndpoints[]): Promise<RelayPorts[]> {
    const ports = new Array<RelayPorts>(calls.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < calls.length; i = next++) ports[i] = await this.createCall(calls[i]);
    };
    await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, worker));
    return ports;
  }

  counters(): Promise<Record<string, number> | null> {
    return Promise.resolve(null);
  }

  async stop(): Promise<void> {
    this.ng.close();
    await this.child.stop(null);
  }

  /** offer carries the caller's SDP and returns b (the port the callee sends to). */
  private async createCall(call: CallEndpoints): Promise<RelayPorts> {
    const callId = `packet-rate-${this.child.pid}-${this.callCount++}`;
    const offer = await this.ng.request({
      command: 'offer',
      'call-id': callId,
      'from-tag': 'caller',
      sdp: sdpFor(call.callerPort, this.launch.callerAddress),
      replace: ['origin', 'session-connection'],
      ICE: 'remove',
    });
    const answer = await this.ng.request({
      command: 'answer',
      'call-id': callId,
      'from-tag': 'caller',
      'to-tag': 'callee',
      sdp: sdpFor(call.calleePort, this.launch.calleeAddress),
      replace: ['origin', 'session-connection'],
      ICE: 'remove',
    });
    return { a: audioPort(answer), b: audioPort(offer) };
  }
}

function sdpFor(port: number, address = '127.0.0.1'): string {
  return [
    'v=0',
    `o=- 1 1 IN IP4 ${address}`,
    's=packet-rate',
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

function audioPort(reply: BDict): number {
  const sdp = asText(reply.sdp) ?? '';
  const match = /^m=audio (\d+) /m.exec(sdp);
  if (!match) throw new Error(`rtpengine reply without an m=audio line: ${sdp.slice(0, 200)}`);
  return Number(match[1]);
}


