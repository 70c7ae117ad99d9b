/**
 * One relay of an active/standby pair (seeds 001 and 003).
 *
 * - Both relays stream the restoration records of the calls they own to each other and hold the
 *   other's calls pre-created on standby: sockets bound (IP_FREEBIND) to the shared address, not
 *   forwarding. Only the active relay holds the shared address.
 * - Keep-alives every `keepaliveIntervalMs`; after `missed` silent intervals the standby takes
 *   over (hot: flips the pre-created calls active, claims and announces the shared address; cold:
 *   drops them, counting each, and starts empty). Endpoints keep sending to the same address and
 *   port, so no re-INVITE is needed.
 * - `switchover()` hands over on purpose: the active sends HANDOVER on the replication stream
 *   (after every record it owns), the standby takes the calls and the address, and the old active
 *   steps down once it hears the new one active: media pauses for about one keep-alive interval.
 * - A relay that comes back does not preempt: it hears an active peer and stays standby.
 * - Split brain (both active once a partition heals): higher priority wins, then the higher
 *   epoch (the more recent takeover), then the smaller node id. The loser waits for its
 *   replication link to be in sync, sends HANDOVER (so the winner adopts the calls the loser
 *   owned, which it already holds on standby) and steps down; no call is lost on either side.
 * - A record from the peer with a newer epoch than this relay's wins over this relay's own copy
 *   of the call: the peer took it over.
 * - Losing the SIP server never ends a call here: only the call model's media timeouts do.
 */
import { EventEmitter } from 'node:events';
import { RecordFormatError } from '../errors';
import type { Role, KeepAliveMessage } from './keepalive';
import { KeepAlive } from './keepalive';
import { PeerIdentity, RecordSink, ReplicationReceiver, ReplicationSender } from './replication';
import { CallRecord, encodeRecord } from './restoration-record';
import type { SharedAddress } from './shared-address';

/** What the HA node needs from the call model. */
export interface ReplicatedCalls {
  /** Records of every call this relay owns (for a full sync), freshly exported. */
  ownRecords(owner: string, epoch: number): AsyncIterable<CallRecord>;
  /** Creates or updates a peer's call on standby from its record. */
  restore(record: CallRecord): Promise<void>;
  /** Removes a peer's standby call. */
  forget(callId: string): Promise<void>;
  /** Ids of the standby (peer-owned) calls. */
  standbyCallIds(): string[];
  /** Starts forwarding every standby call and takes ownership of it; returns how many. */
  adoptAll(): Promise<number>;
  /** Ends every standby call without forwarding it (cold standby); returns their ids. */
  dropAll(): Promise<string[]>;
  /** Puts every owned call on standby (stepping down); returns how many. */
  yieldAll(): Promise<number>;
  sessions(): number;
}

export interface HaNodeOptions {
  nodeId: string;
  priority: number;
  mode: 'hot' | 'cold';
  listen: { address: string; port: number };
  peer: { host: string; port: number };
  keepaliveIntervalMs: number;
  missed: number;
  sharedAddress: SharedAddress | null;
  calls: ReplicatedCalls;
  /** Start as this role instead of listening for an active peer first. */
  initialRole?: Role;
}

export interface HaEvents {
  role: [role: Role, reason: string];
  dropped: [callIds: string[]];
  error: [error: Error];
}

export interface HaStats {
  takeovers: number;
  switchovers: number;
  stepDowns: number;
  splitBrains: number;
  droppedCalls: number;
  rejectedRecords: number;
  /** Time from the last keep-alive heard to the shared address being announced, last takeover (ms). */
  lastTakeoverMs: number;
}

export class HaNode extends EventEmitter<HaEvents> {
  role: Role = 'standby';
  epoch = 0;
  readonly stats: HaStats = { takeovers: 0, switchovers: 0, stepDowns: 0, splitBrains: 0, droppedCalls: 0, rejectedRecords: 0, lastTakeoverMs: 0 };
  readonly keepalive: KeepAlive;
  readonly sender: ReplicationSender;
  readonly receiver: ReplicationReceiver;
  private transition: Promise<void> = Promise.resolve();
  private yielding = false;
  private readonly latest = new Map<string, { bytes: Buffer; writtenAt: number; version: number }>();
  private readonly peerVersions = new Map<string, number>();

  constructor(private readonly options: HaNodeOptions) {
    super();
    this.keepalive = new KeepAlive({
      listen: options.listen,
      peer: options.peer,
      intervalMs: options.keepaliveIntervalMs,
      missed: options.missed,
      state: () => ({
        node: options.nodeId,
        epoch: this.epoch,
        role: this.role,
        priority: options.priority,
        sessions: options.calls.sessions(),
        load: 0,
        handover: false,
      }),
    });
    this.sender = new ReplicationSender({
      peer: options.peer,
      identity: () => this.identity(),
      snapshot: () => [...this.latest.entries()].map(([callId, r]) => ({ callId, bytes: r.bytes, writtenAt: r.writtenAt })),
    });
    this.receiver = new ReplicationReceiver(this.sink(), options.nodeId);
    this.receiver.on('error', (e) => this.emit('error', e));
    this.receiver.on('handover', (peer) => void this.serialise(() => this.takeHandover(peer)));
    this.keepalive.on('message', (m) => this.onKeepAlive(m));
    this.keepalive.on('lost', (m) => this.onPeerLost(m));
  }

  async start(): Promise<void> {
    await this.receiver.listen(this.options.listen.address, this.options.listen.port);
    await this.keepalive.start();
    this.sender.start();
    if (this.options.initialRole === 'active') {
      await this.serialise(() => this.becomeActive('configured active'));
      return;
    }
    if (this.options.initialRole === 'standby') return;
    // Listen for an active peer first: a relay that comes back must not preempt it.
    const wait = this.options.keepaliveIntervalMs * (this.options.missed + 2);
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.keepalive.peer?.role !== 'active') await this.serialise(() => this.becomeActive('no active peer'));
  }

  async close(): Promise<void> {
    this.keepalive.close();
    this.sender.close();
    await this.receiver.close();
    if (this.role === 'active') await this.options.sharedAddress?.release();
  }

  /** Publishes a new version of an owned call (after offer, answer, endpoint learned). */
  publish(record: CallRecord): void {
    record.owner = this.options.nodeId;
    record.epoch = this.epoch;
    const bytes = encodeRecord(record);
    this.latest.set(record.callId, { bytes, writtenAt: record.writtenAt, version: record.version });
    this.sender.upsert(bytes, record.writtenAt);
  }

  /** An owned call ended. */
  unpublish(callId: string): void {
    const last = this.latest.get(callId);
    this.latest.delete(callId);
    this.sender.remove(callId, (last?.version ?? 0) + 1);
  }

  /** Planned handover to the peer (`rtphub ctl switchover`). */
  async switchover(timeoutMs = 2000): Promise<void> {
    if (this.role !== 'active') throw new Error('only the active relay can switch over');
    if (!this.keepalive.peerAlive || !this.sender.handover()) throw new Error('the peer relay is not reachable and in sync');
    this.stats.switchovers++;
    await this.awaitPeerActive(timeoutMs);
    await this.serialise(() => this.becomeStandby('switchover'));
  }

  private async awaitPeerActive(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const taken = (): boolean => this.keepalive.peer?.role === 'active' && this.keepalive.peer.epoch > this.epoch;
    while (!taken() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, this.options.keepaliveIntervalMs / 4)));
    }
    if (!taken()) throw new Error('the peer did not take over in time');
  }

  /** The peer handed its calls over: adopt them (and take the active role if not already). */
  private async takeHandover(peer: PeerIdentity): Promise<void> {
    if (this.role === 'standby') {
      await this.becomeActive(`handover from ${peer.node}`);
      return;
    }
    await this.options.calls.adoptAll();
    for await (const record of this.options.calls.ownRecords(this.options.nodeId, this.epoch)) this.publish(record);
  }

  /** Role forced from outside (keepalived notify script: `rtphub ctl active|standby`). */
  async setRole(role: Role, reason: string): Promise<void> {
    await this.serialise(() => (role === 'active' ? this.becomeActive(reason) : this.becomeStandby(reason)));
  }

  private identity(): PeerIdentity {
    return { node: this.options.nodeId, epoch: this.epoch, priority: this.options.priority };
  }

  private serialise(step: () => Promise<void>): Promise<void> {
    const run = this.transition.then(step);
    this.transition = run.catch((error: Error) => {
      this.emit('error', error);
    });
    return run;
  }

  private onKeepAlive(m: KeepAliveMessage): void {
    if (m.role === 'active' && this.role === 'active' && !this.yielding && this.losesTo(m)) {
      this.stats.splitBrains++;
      this.yielding = true;
      void this.serialise(() => this.yieldTo(m)).finally(() => (this.yielding = false));
    }
  }

  /** Split brain lost: hand the calls over once the link is in sync, then step down. */
  private async yieldTo(m: KeepAliveMessage): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!this.sender.inSyncWithPeer && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!this.sender.handover()) throw new Error(`split brain with ${m.node}: replication link not in sync, staying active`);
    await this.becomeStandby(`split brain: ${m.node} wins`);
  }

  /** The deterministic split-brain rule: priority, then epoch, then node id. */
  private losesTo(m: KeepAliveMessage): boolean {
    if (m.priority !== this.options.priority) return m.priority > this.options.priority;
    if (m.epoch !== this.epoch) return m.epoch > this.epoch;
    return m.node < this.options.nodeId;
  }

  private onPeerLost(m: KeepAliveMessage): void {
    if (this.role !== 'standby' || m.role !== 'active') return;
    const heard = this.keepalive.stats.lastHeardAt;
    void this.serialise(async () => {
      if (this.options.mode === 'cold') {
        const dropped = await this.options.calls.dropAll();
        this.stats.droppedCalls += dropped.length;
        this.emit('dropped', dropped);
      }
      await this.becomeActive(`peer ${m.node} lost`);
      this.stats.lastTakeoverMs = Date.now() - heard;
    });
  }

  private async becomeActive(reason: string): Promise<void> {
    if (this.role === 'active') return;
    this.epoch = Math.max(this.epoch, this.keepalive.peer?.epoch ?? 0) + 1;
    await this.options.calls.adoptAll();
    this.role = 'active';
    this.stats.takeovers++;
    await this.options.sharedAddress?.claim();
    this.keepalive.send();
    for await (const record of this.options.calls.ownRecords(this.options.nodeId, this.epoch)) this.publish(record);
    this.emit('role', 'active', reason);
  }

  private async becomeStandby(reason: string): Promise<void> {
    if (this.role === 'standby') return;
    this.role = 'standby';
    this.stats.stepDowns++;
    await this.options.sharedAddress?.release();
    await this.options.calls.yieldAll();
    this.latest.clear();
    this.keepalive.send();
    this.emit('role', 'standby', reason);
  }

  private sink(): RecordSink {
    return {
      upsert: async (record: CallRecord, from: PeerIdentity) => {
        const known = this.peerVersions.get(record.callId) ?? 0;
        if (record.version < known) {
          this.stats.rejectedRecords++;
          throw new RecordFormatError(`stale record for ${record.callId}: version ${record.version} after ${known}`);
        }
        if (this.latest.has(record.callId)) {
          if (record.epoch <= this.epoch) {
            this.stats.rejectedRecords++;
            throw new RecordFormatError(`record for ${record.callId} from ${from.node} (epoch ${record.epoch}), but this relay owns that call`);
          }
          this.latest.delete(record.callId);
        }
        this.peerVersions.set(record.callId, record.version);
        await this.options.calls.restore(record);
      },
      remove: async (callId: string, version: number) => {
        if ((this.peerVersions.get(callId) ?? 0) > version) return;
        this.peerVersions.delete(callId);
        await this.options.calls.forget(callId);
      },
      synced: async (callIds: Set<string>) => {
        for (const id of this.options.calls.standbyCallIds()) {
          if (callIds.has(id)) continue;
          this.peerVersions.delete(id);
          await this.options.calls.forget(id);
        }
      },
    };
  }
}
