/**
 * The SIP server's side of the failover tests and benchmark: an ng client that runs inside the
 * caller's network namespace (the relays are reachable only there) and takes JSON commands, one
 * per line, on stdin; it answers each with one JSON line on stdout carrying the command's `tag`.
 * Commands run concurrently (a status query need not wait for a setup burst).
 *
 *   {"op":"setup","ng":"IP:PORT","rate":1000,"calls":[{"id","caller":[ip,port],"callee":[ip,port]}],"hangup":false}
 *      offer + answer per call (+ delete right after the answer with `hangup`), starting at most
 *      `rate` calls per second, at most 64 in flight;
 *      answers {"ports":[[a,b] | null, ...], "failed", "errors", "ms", "setup_ms":{p50,p99}}:
 *      the relay's port facing the caller (a) and the callee (b) of each call
 *   {"op":"delete","ng":"IP:PORT","rate":1000,"ids":[...]}   answers {"failed","errors","ms"}
 *   {"op":"ng","ng":"IP:PORT","command":{...}}               answers {"reply":{...}} or {"error"}
 *   {"op":"tcp","host","port","chunks":[base64...],"waitMs"}  writes the chunks to a TCP connection
 *      (a replication peer's stand-in); answers {"closed": did the other side close it within
 *      waitMs, "acks": sequences of the ACK frames received}
 * It exits at the end of its input.
 */
import net from 'node:net';
import readline from 'node:readline';
import { FrameDecoder, FrameType } from '../../../src/ha/frames';
import { BEncodable, PlainValue, toPlain } from '../../../src/ng/bencode';
import { NgClient } from '../../../src/ng/client';

interface CallSpec {
  id: string;
  caller: [string, number];
  callee: [string, number];
}

type Command =
  | { op: 'setup'; ng: string; rate: number; calls: CallSpec[]; hangup?: boolean }
  | { op: 'delete'; ng: string; rate: number; ids: string[] }
  | { op: 'ng'; ng: string; command: Record<string, BEncodable>; timeoutMs?: number }
  | { op: 'tcp'; host: string; port: number; chunks: string[]; waitMs: number };

const IN_FLIGHT = 64;
const clients = new Map<string, NgClient>();

function client(where: string, timeoutMs = 1000): NgClient {
  const key = `${where}/${timeoutMs}`;
  let c = clients.get(key);
  if (!c) {
    const [host, port] = where.split(':');
    c = new NgClient({ host, port: Number(port), timeoutMs, attempts: 3 });
    clients.set(key, c);
  }
  return c;
}

function sdp(address: string, port: number, session: string): string {
  return [
    'v=0',
    `o=- ${port} 1 IN IP4 ${address}`,
    `s=${session}`,
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtcp-mux',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

function mediaPort(reply: Record<string, PlainValue>): number {
  if (reply.result !== 'ok') throw new Error(String(reply['error-reason'] ?? reply.result));
  const m = /^m=audio (\d+) /m.exec(String(reply.sdp ?? ''));
  if (!m) throw new Error('reply without m=audio');
  return Number(m[1]);
}

/** Runs `job(i)` for i in 0..count-1, starting at most `rate` per second and `IN_FLIGHT` at once. */
async function paced(count: number, rate: number, job: (i: number) => Promise<void>): Promise<void> {
  const start = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const due = start + (i * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function setup(c: Extract<Command, { op: 'setup' }>): Promise<Record<string, unknown>> {
  const ng = client(c.ng);
  const ports: Array<[number, number] | null> = c.calls.map(() => null);
  const errors: string[] = [];
  const took: number[] = [];
  const started = Date.now();
  await paced(c.calls.length, c.rate, async (i) => {
    const call = c.calls[i];
    const t0 = performance.now();
    try {
      const base = { 'call-id': call.id, 'from-tag': `${call.id}-from`, 'rtcp-mux': ['accept', 'require'] as BEncodable };
      const offer = toPlain(await ng.request({ ...base, command: 'offer', sdp: sdp(call.caller[0], call.caller[1], 'caller') }));
      const b = mediaPort(offer as Record<string, PlainValue>);
      const answer = toPlain(
        await ng.request({ ...base, command: 'answer', 'to-tag': `${call.id}-to`, sdp: sdp(call.callee[0], call.callee[1], 'callee') }),
      );
      ports[i] = [mediaPort(answer as Record<string, PlainValue>), b];
      took.push(performance.now() - t0);
      if (c.hangup) {
        const deleted = toPlain(await ng.request({ command: 'delete', 'call-id': call.id, 'from-tag': `${call.id}-from`, 'delete-delay': 0 })) as Record<string, PlainValue>;
        if (deleted.result !== 'ok' || deleted.warning !== undefined) throw new Error(`delete: ${String(deleted['error-reason'] ?? deleted.warning)}`);
      }
    } catch (error) {
      if (errors.length < 10) errors.push(`${call.id}: ${(error as Error).message}`);
    }
  });
  return {
    ports,
    failed: ports.filter((p) => p === null).length,
    errors,
    ms: Date.now() - started,
    setup_ms: { p50: percentile(took, 50), p99: percentile(took, 99) },
  };
}

async function remove(c: Extract<Command, { op: 'delete' }>): Promise<Record<string, unknown>> {
  const ng = client(c.ng);
  const errors: string[] = [];
  let failed = 0;
  const started = Date.now();
  await paced(c.ids.length, c.rate, async (i) => {
    const id = c.ids[i];
    try {
      const reply = toPlain(await ng.request({ command: 'delete', 'call-id': id, 'from-tag': `${id}-from`, 'delete-delay': 0 })) as Record<string, PlainValue>;
      if (reply.result !== 'ok' || reply.warning !== undefined) throw new Error(String(reply['error-reason'] ?? reply.warning ?? reply.result));
    } catch (error) {
      failed++;
      if (errors.length < 10) errors.push(`${id}: ${(error as Error).message}`);
    }
  });
  return { failed, errors, ms: Date.now() - started };
}

function tcp(c: Extract<Command, { op: 'tcp' }>): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const socket = net.connect(c.port, c.host);
    const decoder = new FrameDecoder();
    const acks: number[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ closed, acks });
    };
    const timer = setTimeout(finish, c.waitMs);
    socket.on('connect', () => {
      for (const chunk of c.chunks) socket.write(Buffer.from(chunk, 'base64'));
    });
    socket.on('data', (data) => {
      try {
        for (const frame of decoder.push(data)) if (frame.type === FrameType.Ack) acks.push(frame.sequence);
      } catch {
        // not ours to judge
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

async function handle(c: Command): Promise<Record<string, unknown>> {
  switch (c.op) {
    case 'setup':
      return setup(c);
    case 'delete':
      return remove(c);
    case 'tcp':
      return tcp(c);
    case 'ng':
      try {
        return { reply: toPlain(await client(c.ng, c.timeoutMs ?? 1000).request(c.command)) };
      } catch (error) {
        return { error: (error as Error).message };
      }
  }
}

function main(): void {
  const lines = readline.createInterface({ input: process.stdin });
  const running = new Set<Promise<void>>();
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    const job = (async () => {
      let out: Record<string, unknown>;
      let tag: unknown = null;
      try {
        const command = JSON.parse(line) as Command & { tag?: unknown };
        tag = command.tag ?? null;
        out = await handle(command);
      } catch (error) {
        out = { error: (error as Error).message };
      }
      process.stdout.write(`${JSON.stringify({ tag, ...out })}\n`);
    })();
    running.add(job);
    void job.finally(() => running.delete(job));
  });
  lines.on('close', () => {
    void Promise.all(running).then(() => {
      for (const c of clients.values()) c.close();
      process.exit(0);
    });
  });
}

main();
