/**
 * Restoration records in Redis, for groups of more than two relays: any relay can adopt the
 * calls of a relay that failed.
 *
 * Keys (prefix `rtphub:`):
 *   call:<call-id>    the call's restoration record, with an expiry (--redis-expires)
 *   owner:<node>      set of the call-ids a relay owns
 *   lease:<node>      the relay's lease: a fencing token, expiring after --redis-lease-ms
 *   nodes             set of the relays that ever held a lease
 *   fence             counter handing out fencing tokens
 *
 * Ownership: a relay writes a record only while it holds its lease with its own token and the
 * call is in its owner set (one Lua script, so the check and the write are atomic). A relay whose
 * lease expired is dead to the group: another relay moves its owner set to itself in one Lua
 * script (only while the lease is still absent), then restores and activates those calls. A
 * relay that was only slow finds its token gone at the next renewal, stops writing (it is fenced
 * out), and takes a new lease with a new token: two relays never own one call.
 */
import { EventEmitter } from 'node:events';
import Redis from 'ioredis';
import type { Call } from '../calls/call';
import type { CallRegistry } from '../calls/call-registry';
import type { CallBridge } from '../ha/call-bridge';
import { decodeRecord, encodeRecord } from '../ha/restoration-record';

const PREFIX = 'rtphub:';

const WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  for _, node in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    if redis.call('SISMEMBER', KEYS[5] .. node, ARGV[2]) == 1 and KEYS[5] .. node ~= KEYS[2] then return -2 end
  end
  redis.call('SADD', KEYS[2], ARGV[2])
end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
return 1`;

const REMOVE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('SREM', KEYS[2], ARGV[2]) == 1 then redis.call('DEL', KEYS[3]) end
return 1`;

const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

const ADOPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local ids = redis.call('SMEMBERS', KEYS[2])
if #ids > 0 then redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[2]) end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[4], ARGV[1])
return ids`;

export interface RedisStoreOptions {
  url: string;
  nodeId: string;
  calls: CallRegistry;
  bridge: CallBridge;
  /** Lease lifetime; renewed every third of it. */
  leaseMs?: number;
  /** Expiry of a call record (s). */
  expireSeconds?: number;
}

export interface RedisStoreStats {
  writes: number;
  fencedWrites: number;
  removals: number;
  adoptions: number;
  adoptedCalls: number;
  /** Calls that could not be restored when adopting, by reason. */
  unrestored: Record<string, number>;
  leaseLosses: number;
}

export interface RedisStoreEvents {
  adopted: [from: string, callIds: string[]];
  error: [error: Error];
}

export class RedisStore extends EventEmitter<RedisStoreEvents> {
  readonly stats: RedisStoreStats = { writes: 0, fencedWrites: 0, removals: 0, adoptions: 0, adoptedCalls: 0, unrestored: {}, leaseLosses: 0 };
  private readonly redis: Redis;
  private readonly leaseMs: number;
  private readonly expireSeconds: number;
  private token = '';
  private timer: NodeJS.Timeout | null = null;
  private adopting = false;
  private readonly onChanged = (call: Call): void => void this.write(call);
  private static readonly OWNED_ELSEWHERE = -2;
  private readonly onEnded = (call: Call): void => void this.remove(call.callId);

  constructor(private readonly options: RedisStoreOptions) {
    super();
    this.leaseMs = options.leaseMs ?? 3000;
    this.expireSeconds = options.expireSeconds ?? 86400;
    this.redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    this.redis.on('error', (error: Error) => this.emit('error', error));
  }

  private key(name: string): string {
    return PREFIX + name;
  }

  async start(): Promise<void> {
    await this.redis.connect();
    await this.takeLease();
    this.options.calls.on('changed', this.onChanged);
    this.options.calls.on('ended', this.onEnded);
    this.timer = setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(this.leaseMs / 3)));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.options.calls.off('changed', this.onChanged);
    this.options.calls.off('ended', this.onEnded);
    this.redis.disconnect();
  }

  /** Takes a fresh lease with a new fencing token. */
  private async takeLease(): Promise<void> {
    const token = String(await this.redis.incr(this.key('fence')));
    await this.redis.set(this.key(`lease:${this.options.nodeId}`), token, 'PX', this.leaseMs);
    await this.redis.sadd(this.key('nodes'), this.options.nodeId);
    this.token = token;
  }

  /** Writes a call's record if this relay owns it; returns the script's answer (1 written, -1 no lease, -2 owned elsewhere). */
  private async write(call: Call): Promise<number> {
    if (call.standby) return 0;
    try {
      const record = await this.options.bridge.record(call, this.options.nodeId, Number(this.token));
      const node = this.options.nodeId;
      const result = await this.redis.eval(
        WRITE,
        5,
        this.key(`lease:${node}`),
        this.key(`owner:${node}`),
        this.key(`call:${call.callId}`),
        this.key('nodes'),
        this.key('owner:'),
        this.token,
        call.callId,
        encodeRecord(record),
        this.expireSeconds,
      );
      if (result === 1) this.stats.writes++;
      else this.stats.fencedWrites++;
      return Number(result);
    } catch (error) {
      this.emit('error', error as Error);
      return 0;
    }
  }

  private async remove(callId: string): Promise<void> {
    try {
      const node = this.options.nodeId;
      await this.redis.eval(REMOVE, 3, this.key(`lease:${node}`), this.key(`owner:${node}`), this.key(`call:${callId}`), this.token, callId);
      this.stats.removals++;
    } catch (error) {
      this.emit('error', error as Error);
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      const renewed = await this.redis.eval(RENEW, 1, this.key(`lease:${this.options.nodeId}`), this.token, this.leaseMs);
      if (renewed !== 1) {
        // Fenced out (our lease expired and our calls may have been adopted): start over with a
        // new token, and write again every call still ours (writes in between were refused).
        this.stats.leaseLosses++;
        await this.takeLease();
        await this.reclaim();
      }
      await this.adoptDeadRelays();
    } catch (error) {
      this.emit('error', error as Error);
    }
  }

  /** After a lost lease: rewrites the calls still ours; stops forwarding those adopted meanwhile. */
  private async reclaim(): Promise<void> {
    for (const call of [...this.options.calls.calls.values()]) {
      if ((await this.write(call)) === RedisStore.OWNED_ELSEWHERE) await this.options.calls.forget(call.callId);
    }
  }

  private async adoptDeadRelays(): Promise<void> {
    if (this.adopting) return;
    this.adopting = true;
    try {
      const nodes = await this.redis.smembers(this.key('nodes'));
      for (const node of nodes) if (node !== this.options.nodeId) await this.adopt(node);
    } finally {
      this.adopting = false;
    }
  }

  /** Moves a dead relay's calls to this relay (atomically, only if its lease is gone) and restores them. */
  async adopt(node: string): Promise<string[]> {
    const me = this.options.nodeId;
    const ids = (await this.redis.eval(ADOPT, 4, this.key(`lease:${node}`), this.key(`owner:${node}`), this.key(`owner:${me}`), this.key('nodes'), node)) as
      | string[]
      | null;
    if (!ids || ids.length === 0) return [];
    this.stats.adoptions++;
    const restored: string[] = [];
    for (const id of ids) {
      const reason = await this.restore(id);
      if (reason === null) restored.push(id);
      else this.stats.unrestored[reason] = (this.stats.unrestored[reason] ?? 0) + 1;
    }
    await this.options.bridge.adoptAll();
    this.stats.adoptedCalls += restored.length;
    this.emit('adopted', node, restored);
    for (const id of restored) {
      const call = this.options.calls.get(id);
      if (call) void this.write(call);
    }
    return restored;
  }

  /** null when restored, else why not. */
  private async restore(callId: string): Promise<string | null> {
    const bytes = await this.redis.getBuffer(this.key(`call:${callId}`));
    if (!bytes) return 'record expired';
    try {
      await this.options.bridge.restore(decodeRecord(bytes));
      return null;
    } catch (error) {
      return (error as Error).name === 'RecordFormatError' ? 'malformed record' : `restore failed: ${(error as Error).message}`;
    }
  }
}
