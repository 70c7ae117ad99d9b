/**
 * Child-process side of the worker-termination test in test/native/worker-thread.test.ts (a
 * child, because the failure it looks for aborts the whole process). Starts a worker thread
 * whose relay keeps creating and closing streams, terminates it a few milliseconds later, and
 * repeats; exits with code 0 when every round survived.
 * Usage: node --import tsx terminate-worker-child.ts <backend> <portMin> <portMax> <rounds>
 */
import path from 'node:path';
import type { RelayWorkerData, RelayWorkerMessage } from './relay-worker';
import { startTsWorker } from './ts-worker';

async function main(): Promise<void> {
  const [backend, portMin, portMax, rounds] = process.argv.slice(2);
  const script = path.join(__dirname, 'relay-worker.ts');
  for (let round = 0; round < Number(rounds); round++) {
    const data: RelayWorkerData = {
      backend: backend as RelayWorkerData['backend'],
      portMin: Number(portMin),
      portMax: Number(portMax),
      remoteB: { address: '127.0.0.1', port: 9 },
      churn: true,
    };
    const worker = startTsWorker(script, data);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: RelayWorkerMessage) => (m.type === 'ready' ? resolve() : undefined));
      worker.on('error', reject);
    });
    await new Promise((resolve) => setTimeout(resolve, round % 5));
    await worker.terminate();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 2;
});
