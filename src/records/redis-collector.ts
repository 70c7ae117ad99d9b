/**
 * A Redis stream collector: `redis://[:PASSWORD@]HOST:PORT/DB?stream=NAME&maxlen=N&dedupe=S`.
 * Each batch is one Lua script that, per record, claims `<stream>:seen:<id>` (SET NX, expiring
 * after `dedupe` seconds, default one day) and only then XADDs `id` and `record` to the stream:
 * a record sent twice around a crash or a timeout lands in the stream once. The script runs
 * atomically, so a batch lands whole and in order. `maxlen` trims the stream (approximately);
 * default: no trimming. The health check is PING. Needs a standalone Redis, or a stream name
 * with a {hash tag} on a cluster (the dedupe keys share the stream's name).
 */
import Redis from 'ioredis';
import { Collector, CollectorError, CollectorOptions, failure } from './collector';

const ADD = `
local added = 0
local ttl = tonumber(ARGV[1])
local maxlen = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  if redis.call('SET', KEYS[1] .. ':seen:' .. ARGV[i], '1', 'NX', 'EX', ttl) then
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'id', ARGV[i], 'record', ARGV[i + 1])
    else
      redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'record', ARGV[i + 1])
    end
    added = added + 1
  end
end
return added`;

/** The idempotency key of a serialised record: records are written with `id` first. */
function idOf(body: string): string {
  const m = /^\{"id":"([^"\\]+)"/.exec(body);
  if (m) return m[1];
  const parsed = JSON.parse(body) as { id?: unknown };
  if (typeof parsed.id !== 'string') throw new CollectorError('refused', 'a record without an id');
  return parsed.id;
}

export class RedisCollector implements Collector {
  private readonly redis: Redis;
  private readonly stream: string;
  private readonly maxlen: number;
  private readonly dedupeSeconds: number;

  constructor(url: URL, options: CollectorOptions) {
    const params = url.searchParams;
    this.stream = params.get('stream') || 'rtphub:records';
    this.maxlen = Math.max(0, Number(params.get('maxlen') ?? 0) || 0);
    this.dedupeSeconds = Math.max(1, Number(params.get('dedupe') ?? 86400) || 86400);
    const connection = new URL(url.href);
    connection.search = '';
    this.redis = new Redis(connection.href, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: options.timeoutMs,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    });
    // Failures surface through send() and check(); the forwarder counts and logs them.
    this.redis.on('error', () => undefined);
    this.redis.connect().catch(() => undefined);
  }

  async send(records: readonly string[]): Promise<void> {
    const args: string[] = [String(this.dedupeSeconds), String(this.maxlen)];
    for (const body of records) args.push(idOf(body), body);
    try {
      await this.redis.eval(ADD, 1, this.stream, ...args);
    } catch (error) {
      throw failure(error, `XADD to ${this.stream}`);
    }
  }

  async check(): Promise<void> {
    try {
      if (this.redis.status === 'end' || this.redis.status === 'wait') await this.redis.connect();
      await this.redis.ping();
    } catch (error) {
      throw failure(error, 'PING');
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
