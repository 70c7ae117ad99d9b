// rtphub started in-process (data plane, call model, ng socket on an ephemeral port) and an ng
// client to drive it as Kamailio drives rtpengine; stopped when the test ends.
import type { ExecutionContext } from 'ava';
import pino from 'pino';
import type { Call } from '../../src/calls/call';
import type { EndReason } from '../../src/calls/types';
import { Running, start } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import { BEncodable, PlainValue, toPlain } from '../../src/ng/bencode';
import { NgClient } from '../../src/ng/client';

export type Dict = { [key: string]: PlainValue };

export interface Rtphub {
  running: Running;
  ngPort: number;
  request(command: Record<string, BEncodable>): Promise<Dict>;
  portsInUse(): number;
  /** Resolves with the reason when `callId` ends, rejects after `timeoutMs`. */
  ended(callId: string, timeoutMs: number): Promise<EndReason>;
}

export async function startRtphub(t: ExecutionContext, portMin: number, portMax: number, flags: string[] = []): Promise<Rtphub> {
  const config = loadConfig([
    '--interface=127.0.0.1',
    '--listen-ng=127.0.0.1:0',
    `--port-min=${portMin}`,
    `--port-max=${portMax}`,
    '--num-threads=1',
    ...flags,
  ]);
  const running = await start(config, pino({ level: 'silent' }));
  const ngPort = running.ng.addresses().udp?.port ?? 0;
  const client = new NgClient({ host: '127.0.0.1', port: ngPort, timeoutMs: 1000 });
  t.teardown(async () => {
    client.close();
    await running.stop();
  });
  const ended = (callId: string, timeoutMs: number): Promise<EndReason> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`call ${callId} did not end within ${timeoutMs} ms`)), timeoutMs);
      const listener = (call: Call, reason: EndReason): void => {
        if (call.callId !== callId) return;
        clearTimeout(timer);
        running.calls.off('ended', listener);
        resolve(reason);
      };
      running.calls.on('ended', listener);
    });
  return {
    running,
    ngPort,
    request: async (command) => toPlain(await client.request(command)) as Dict,
    portsInUse: () => running.relay.info().portsInUse,
    ended,
  };
}
