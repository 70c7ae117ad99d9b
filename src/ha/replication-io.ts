/**
 * The main thread's handle on the replication I/O thread (replication-io-worker.ts), which owns
 * the replication link's TCP sockets. The frames' meaning stays here, in ReplicationSender and
 * ReplicationReceiver; the thread moves bytes, acknowledges what it reads (a HANDOVER only once
 * confirmed) and times the acknowledgements of what it writes. Under load the main thread may be
 * busy for tens of milliseconds at a time; the thread is not, so neither the standby's
 * acknowledgement nor the owner's reading of it waits for a main thread.
 */
import { EventEmitter } from 'node:events';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

export type ToIo =
  | { t: 'listen'; address: string; port: number }
  | { t: 'in-destroy'; id: number }
  | { t: 'in-confirm'; id: number; sequence: number }
  | { t: 'out-connect'; generation: number; host: string; port: number; maxBuffered: number }
  /** `lags`: flat pairs of a record frame's sequence and its write time (Unix ms). */
  | { t: 'out-write'; generation: number; data: Uint8Array; lags: number[] }
  | { t: 'out-destroy'; generation: number }
  | { t: 'close' };

export type FromIo =
  | { t: 'ready'; scheduling: string }
  | { t: 'listening'; address: string; port: number }
  | { t: 'listen-failed'; message: string }
  | { t: 'in-open'; id: number }
  | { t: 'in-data'; id: number; chunk: Uint8Array }
  | { t: 'in-close'; id: number }
  | { t: 'out-connected'; generation: number }
  | { t: 'out-closed'; generation: number; connected: boolean }
  | { t: 'out-acked'; generation: number; sequence: number; lags: number[] }
  | { t: 'out-overflow'; generation: number }
  | { t: 'out-drain'; generation: number }
  | { t: 'closed' };

type Events = {
  /** The thread ended on its own (a bug): replication stops until the relay restarts. */
  failed: [error: Error];
  'in-open': [id: number];
  'in-data': [id: number, chunk: Buffer];
  'in-close': [id: number];
  'out-connected': [generation: number];
  'out-closed': [generation: number, connected: boolean];
  'out-acked': [generation: number, sequence: number, lags: number[]];
  'out-overflow': [generation: number];
  'out-drain': [generation: number];
};

function startWorker(): Worker {
  const ext = extname(__filename);
  const file = join(__dirname, `replication-io-worker${ext}`);
  if (ext === '.ts') return new Worker(`require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(file)});`, { eval: true });
  return new Worker(file);
}

export class ReplicationIo extends EventEmitter<Events> {
  /** The I/O thread's scheduling (real-time when allowed). */
  scheduling = 'default';
  private worker: Worker | null = null;
  private starting: Promise<void> | null = null;
  private listening: ((m: FromIo) => void) | null = null;

  /** Starts the thread (once). */
  start(): Promise<void> {
    this.starting ??= new Promise<void>((resolve, reject) => {
      const worker = startWorker();
      this.worker = worker;
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`replication I/O thread exited (${code})`)));
      worker.on('message', (m: FromIo) => {
        if (m.t === 'ready') {
          this.scheduling = m.scheduling;
          worker.removeAllListeners('error');
          worker.removeAllListeners('exit');
          let failure: Error | null = null;
          worker.on('error', (error) => (failure = error));
          worker.on('exit', (code) => {
            if (this.worker === worker) this.emit('failed', failure ?? new Error(`replication I/O thread exited (${code})`));
          });
          worker.unref();
          resolve();
        } else {
          this.fromWorker(m);
        }
      });
    });
    return this.starting;
  }

  async listen(address: string, port: number): Promise<{ address: string; port: number }> {
    await this.start();
    return new Promise((resolve, reject) => {
      this.listening = (m) => {
        this.listening = null;
        if (m.t === 'listening') resolve({ address: m.address, port: m.port });
        else if (m.t === 'listen-failed') reject(new Error(`replication listener on ${address}:${port}: ${m.message}`));
      };
      this.post({ t: 'listen', address, port });
    });
  }

  /** Connects the outbound link (replacing the previous one); its events carry `generation`. */
  connect(generation: number, host: string, port: number, maxBuffered: number): void {
    this.post({ t: 'out-connect', generation, host, port, maxBuffered });
  }

  /** Writes encoded frames on the outbound link of `generation` (dropped if that link is gone). */
  write(generation: number, frames: Buffer[], lags: number[]): void {
    let length = 0;
    for (const f of frames) length += f.length;
    const data = new Uint8Array(length);
    let at = 0;
    for (const f of frames) {
      data.set(f, at);
      at += f.length;
    }
    this.post({ t: 'out-write', generation, data, lags }, [data.buffer]);
  }

  destroyOutbound(generation: number): void {
    this.post({ t: 'out-destroy', generation });
  }

  destroyInbound(id: number): void {
    this.post({ t: 'in-destroy', id });
  }

  /** The calls of the HANDOVER `sequence` on inbound connection `id` are taken: it may be acknowledged. */
  confirm(id: number, sequence: number): void {
    this.post({ t: 'in-confirm', id, sequence });
  }

  /** Closes every socket and ends the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      worker.on('message', (m: FromIo) => {
        if (m.t === 'closed') {
          clearTimeout(timer);
          resolve();
        }
      });
      worker.postMessage({ t: 'close' } satisfies ToIo);
    });
    await worker.terminate();
  }

  private post(m: ToIo, transfer?: ArrayBuffer[]): void {
    this.worker?.postMessage(m, transfer);
  }

  private fromWorker(m: FromIo): void {
    switch (m.t) {
      case 'listening':
      case 'listen-failed':
        this.listening?.(m);
        return;
      case 'in-open':
        this.emit('in-open', m.id);
        return;
      case 'in-data':
        this.emit('in-data', m.id, Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
        return;
      case 'in-close':
        this.emit('in-close', m.id);
        return;
      case 'out-connected':
        this.emit('out-connected', m.generation);
        return;
      case 'out-closed':
        this.emit('out-closed', m.generation, m.connected);
        return;
      case 'out-acked':
        this.emit('out-acked', m.generation, m.sequence, m.lags);
        return;
      case 'out-overflow':
        this.emit('out-overflow', m.generation);
        return;
      case 'out-drain':
        this.emit('out-drain', m.generation);
        return;
      default:
        return;
    }
  }
}
