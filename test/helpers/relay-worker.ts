/**
 * Worker-thread side of test/native/worker-thread.test.ts: loads the addon in its own
 * environment, starts a relay with one stream whose leg a learns its party, reports the stream's
 * ports and the `learned` event to the parent, and closes the relay when told to (then simply
 * ends: nothing of the relay may keep the worker alive). With `churn`, it keeps creating and
 * closing streams after that, so engine events are always on their way to the worker's thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Relay } from '../../src/native/relay';
import type { BackendName, Endpoint } from '../../src/native/types';

export interface RelayWorkerData {
  backend: BackendName;
  portMin: number;
  portMax: number;
  /** Where leg b sends (a party in the parent thread). */
  remoteB: Endpoint;
  /** Keep creating and closing streams once ready (a steady flow of engine events). */
  churn?: boolean;
}

export type RelayWorkerMessage =
  | { type: 'ready'; a: Endpoint; b: Endpoint; backend: string }
  | { type: 'learned'; endpoint: Endpoint }
  | { type: 'closed' }
  | { type: 'error'; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('relay-worker.ts must run in a worker thread');
  const data = workerData as RelayWorkerData;
  const post = (message: RelayWorkerMessage): void => port.postMessage(message);
  const relay = Relay.start({ backend: data.backend, portMin: data.portMin, portMax: data.portMax, threads: 1 });
  relay.on('learned', (event) => post({ type: 'learned', endpoint: event.endpoint }));
  const stream = await relay.createStream({
    a: { remote: null, learning: 'immediate' },
    b: { remote: data.remoteB, learning: 'off' },
  });
  port.on('message', (message: string) => {
    if (message !== 'close') return;
    void relay.close().then(() => {
      post({ type: 'closed' });
      port.close();
    });
  });
  post({
    type: 'ready',
    backend: relay.backend,
    a: { address: stream.a.localAddress, port: stream.a.localPort },
    b: { address: stream.b.localAddress, port: stream.b.localPort },
  });
  while (data.churn && !relay.closed) {
    const extra = await relay.createStream({ a: {}, b: {} }).catch(() => undefined);
    await extra?.close();
  }
}

main().catch((error: unknown) => parentPort?.postMessage({ type: 'error', message: String(error) }));
