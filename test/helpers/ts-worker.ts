/**
 * Runs a TypeScript module in a worker thread. Node 20 does not apply `--import tsx` to workers,
 * so the worker first registers tsx's CommonJS hook and then requires the module.
 */
import { Worker } from 'node:worker_threads';

export function startTsWorker(file: string, workerData: unknown): Worker {
  const source = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(file)});`;
  return new Worker(source, { eval: true, workerData });
}
