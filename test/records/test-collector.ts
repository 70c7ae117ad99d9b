/**
 * A real HTTP collector for the call-record tests, on a loopback port: it takes POSTed JSON
 * batches and de-duplicates records by `id`, as the README asks of a collector. It can be taken
 * down (the port refuses connections) and brought back on the same port, answer 500, or hang
 * (accept a request and never answer). Closed when the test ends.
 */
import http from 'node:http';
import net from 'node:net';
import type { ExecutionContext } from 'ava';

export type CollectorMode = 'ok' | 'error' | 'hang';

export interface ReceivedRecord {
  id: string;
  node: string;
  relay_boot: string;
  relay_seq: number;
  call_id: string;
  [field: string]: unknown;
}

export class TestCollector {
  mode: CollectorMode = 'ok';
  /** Every record, first copy only, in arrival order. */
  readonly records: ReceivedRecord[] = [];
  readonly ids = new Set<string>();
  duplicates = 0;
  requests = 0;
  probes = 0;
  errorsAnswered = 0;
  hung = 0;
  /** Batches holding a record of one of these calls are answered 400 (rejected for good). */
  readonly rejectCallIds = new Set<string>();
  rejectedBatches = 0;
  private server: http.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  private constructor(public port: number) {}

  static async start(t: ExecutionContext, port = 0): Promise<TestCollector> {
    const collector = new TestCollector(port);
    await collector.listen();
    t.teardown(() => collector.down());
    return collector;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/records`;
  }

  /** Stops listening and cuts every connection: the collector is unreachable. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    if (!this.server) await this.listen();
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      if (this.mode === 'hang') {
        this.hung++;
        return;
      }
      if (this.mode === 'error') {
        this.errorsAnswered++;
        res.writeHead(500).end('collector broken\n');
        return;
      }
      const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedRecord[];
      if (batch.length === 0) this.probes++;
      if (batch.some((r) => this.rejectCallIds.has(r.call_id))) {
        this.rejectedBatches++;
        res.writeHead(400).end('record refused\n');
        return;
      }
      for (const record of batch) {
        if (this.ids.has(record.id)) {
          this.duplicates++;
          continue;
        }
        this.ids.add(record.id);
        this.records.push(record);
      }
      res.writeHead(204).end();
    });
  }
}

/** Fails with the first place where records of one relay boot arrived out of order. */
export function outOfOrder(records: readonly ReceivedRecord[]): string | null {
  const last = new Map<string, number>();
  for (const r of records) {
    const key = `${r.node}/${r.relay_boot}`;
    const previous = last.get(key) ?? 0;
    if (r.relay_seq <= previous) return `${key}: relay_seq ${r.relay_seq} after ${previous}`;
    last.set(key, r.relay_seq);
  }
  return null;
}
