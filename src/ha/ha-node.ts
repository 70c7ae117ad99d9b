/**
 * One relay of an active/standby pair (seeds 001 and 003).
 *
 * - Both relays stream the restoration records of the calls they own to each other and hold the
 *   other's calls pre-created on standby: sockets bound (IP_FREEBIND) to the shared address, not
 *   forwarding. Only the active relay holds the shared address. With the address held on `lo` by
 *   both (shared-address.ts, `held`, the default for IPv4) the standby copies are armed instead:
 *   they forward, and only the address (which relay answers ARP for it) decides who gets packets.
 * - Keep-alives every `keepaliveIntervalMs` (from a thread of their own, see keepalive.ts); after
 *   `missed` silent intervals (one and a half once both replication connections closed, as a
 *   killed process's kernel closes them; one once the peer's host refused a keep-alive) the
 *   standby takes over (hot: flips the pre-created calls active, claims and announces the shared
 *   address; armed, the keep-alive thread claims and announces it itself at once and this thread
 *   follows; cold: drops them, counting each, and starts empty). Records still being applied do
 *   not hold a takeover back: their calls are flipped as they come. Endpoints keep sending to the
 *   same address and port, so no re-INVITE is needed.
 * - Role changes run one at a time, and the peer's records wait for one under way.
 * - `switchover()` hands over on purpose: the active sends HANDOVER on the replication stream
 *   (after every record it owns; the peer acknowledges it once it has taken the calls), the
 *   standby takes the calls and the address, and the old active steps down once it hears the new
 *   one active: media pauses for about one keep-alive interval.
 * - A relay that comes back does not preempt, whatever its configured role: it listens first,
 *   hears an active peer and stays standby (dropping the shared address if a crash left it on the
 *   interface); the active peer's full sync then fills it.
 * - Split brain (both active once a partition heals): higher priority wins, then the higher
 *   epoch (the more recent takeover), then the smaller node id. The loser waits for its
 *   replication link to be in sync, sends HANDOVER (so the winner adopts the calls the loser
 *   owned, which it already holds on standby), waits for it to be applied and steps down; the
 *   winner takes a newer epoch than both and announces the shared address again (the loser may
 *   have announced it last). No call is lost on either side.
 * - A record from the peer with a newer epoch than this relay's wins over this relay's own copy
 *   of the call: the peer took it over. One with an older epoch for a call this relay forwards is
 *   refused (counted).
 * - The active relay republishes its calls in the background after a takeover, then sends a full
 *   sync, so the peer's standby table ends identical to its own.
 * - Losing the SIP server never ends a call here: only the call model's media timeouts do.
 */
import { EventEmitter } from 'node:events';
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { RecordFormatError } from '../errors';
import type { Role, KeepAliveMessage, Loss } from './keepalive';
import { KeepAlive } from './keepalive';
import { PeerIdentity, RecordSink, ReplicationReceiver, ReplicationSender } from './replication';
import { ReplicationIo } from './replication-io';
import { CallRecord, encodeRecord } from './restoration-record';
import type { SharedAddress } from './shared-address';

/** What the HA node needs from the call model. */
export interface ReplicatedCalls {
  /** Records of every call this relay owns (for a full sync), freshly exported. */
  ownRecords(owner: string, epoch: number): AsyncIterable<CallRecord>;
  /** Queues creating or updating a peer's call on standby from its record (newest wins). */
  queueRestore(record: CallRecord): void;
  /** Queues removing a peer's standby call. */
  queueForget(callId: string): void;
  /** True while a standby copy of the call is held or queued. */
  holds(callId: string): boolean;
  /** True while this relay forwards the call (it owns it). */
  owns(callId: string): boolean;
  /** Records that could not be applied. */
  readonly restoreFailures: number;
  /** Ids of the standby (peer-owned) calls. */
  standbyCallIds(): string[];
  /**
   * Standby copies forward from now on (set before any is held): the shared address alone decides
   * which relay gets the packets, so a takeover needs no flip (see HaNode, `armed`).
   */
  armStandby(armed: boolean): void;
  /**
   * Starts forwarding every standby call and takes ownership of it (and of those still being
   * restored, which wait for `until`: the rest of the takeover); returns how many.
   */
  adoptAll(until?: Promise<unknown>): Promise<number>;
  /** Ends every standby call without forwarding it (cold standby); returns their ids. */
  dropAll(): Promise<string[]>;
  /** Puts every owned call on standby (stepping down); returns how many. */
  yieldAll(): Promise<number>;
  sessions(): number;
  /** Every call: id, record version and whether it is held on standby (for `ha status`). */
  table(): Array<{ callId: string; version: number; standby: boolean }>;
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
  lost: [peer: KeepAliveMessage, loss: Loss];
  dropped: [callIds: string[]];
  error: [error: Error];
}

export interface HaStats {
  takeovers: number;
  switchovers: number;
  stepDowns: number;
  splitBrains: number;
  droppedCalls: number;
  /** Time from the last keep-alive heard to the shared address being announced, last takeover (ms). */
  lastTakeoverMs: number;
  /** The same takeover in phases, each from the last keep-alive heard (ms): loss detected, calls forwarding, address announced. */
  lastTakeoverPhases: { detected: number; forwarding: number; announced: number; adopted: number };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const RESET_INTERVAL_MS = 5000;

export class HaNode extends EventEmitter<HaEvents> {
  role: Role = 'standby';
  epoch = 0;
  readonly stats: HaStats = {
    takeovers: 0,
    switchovers: 0,
    stepDowns: 0,
    splitBrains: 0,
    droppedCalls: 0,
    lastTakeoverMs: 0,
    lastTakeoverPhases: { detected: 0, forwarding: 0, announced: 0, adopted: 0 },
  };
  readonly keepalive: KeepAlive;
  readonly sender: ReplicationSender;
  readonly receiver: ReplicationReceiver;
  /** The thread that owns the replication link's sockets. */
  readonly io = new ReplicationIo();
  /** This relay's event-loop delay: what replication lag and takeover phases wait for on the main thread. */
  readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  private transition: Promise<void> = Promise.resolve();
  private yielding = false;
  /** A switchover is under way: the peer turning active is expected, not a split brain. */
  private handingOver = false;
  private splitBrain = false;
  /**
   * Hot standby with the shared address held on `lo` (shared-address.ts, `held`): standby copies
   * forward (no packet reaches them while the peer answers for the address), and the keep-alive
   * thread claims the address the moment it declares the active peer lost, so the media move in
   * that thread's time (real-time priority, microseconds of work) instead of waiting for this busy
   * main thread to flip every stream. The call model follows (ownership, epoch, republishing).
   */
  private armed = false;
  /** After a takeover, until every owned call's record is written again: `latest` lacks some. */
  private republishing = false;
  private peerRole: Role | null = null;
  private readonly closedAt = { inbound: 0, outbound: 0 };
  private lastReset = 0;
  private closed = false;
  private readonly latest = new Map<string, { bytes: Buffer; writtenAt: number; version: number }>();
  /** Per call held for a peer: its newest record's version, epoch and write time, and which peer sent it. */
  private readonly peerVersions = new Map<string, { version: number; epoch: number; writtenAt: number; node: string }>();

  constructor(private readonly options: HaNodeOptions) {
    super();
    this.keepalive = new KeepAlive({
      listen: options.listen,
      peer: options.peer,
      intervalMs: options.keepaliveIntervalMs,
      missed: options.missed,
      claim: () => (this.armed ? (options.sharedAddress?.keepAliveClaim ?? null) : null),
      state: () => ({
        node: options.nodeId,
        epoch: this.epoch,
        role: this.role,
        priority: options.priority,
        sessions: options.calls.sessions(),
        load: 0,
        handover: this.handingOver,
      }),
    });
    this.sender = new ReplicationSender({
      io: this.io,
      peer: options.peer,
      identity: () => this.identity(),
      snapshot: () => [...this.latest.entries()].map(([callId, r]) => ({ callId, bytes: r.bytes, writtenAt: r.writtenAt })),
      complete: () => !this.republishing,
    });
    this.receiver = new ReplicationReceiver(this.sink(), options.nodeId, this.io);
    this.receiver.on('error', (e) => this.emit('error', e));
    this.io.on('failed', (e) => this.emit('error', new Error(`replication stopped: ${e.message}`)));
    // A dead process's kernel closes both its connections at once: then the keep-alives need not
    // be missed `missed` times. One closed connection alone is no evidence (a peer resets its
    // sender when it loses this relay's keep-alives, an operator may kill a connection).
    this.receiver.on('gone', (peer) => {
      if (peer.node === this.keepalive.peer?.node) this.connectionClosed('inbound');
    });
    this.sender.on('closed', () => this.connectionClosed('outbound'));
    this.keepalive.on('message', (m) => this.onKeepAlive(m));
    this.keepalive.on('lost', (m, loss) => {
      this.emit('lost', m, loss);
      this.onPeerLost(m, loss.claimedAt);
    });
  }

  /** Suspects the peer when both replication connections closed within a second. */
  private connectionClosed(which: 'inbound' | 'outbound'): void {
    const now = Date.now();
    this.closedAt[which] = now;
    const other = this.closedAt[which === 'inbound' ? 'outbound' : 'inbound'];
    if (now - other < 1000) this.keepalive.suspect();
  }

  /** How the shared address is held (`held`, `added`), or null without one. */
  get sharedAddressMethod(): string | null {
    return this.options.sharedAddress?.method ?? null;
  }

  /** The call model as this node sees it. */
  get calls(): ReplicatedCalls {
    return this.options.calls;
  }

  async start(): Promise<void> {
    // Not active yet: a crash may have left the shared address claimed.
    this.loopDelay.enable();
    await this.options.sharedAddress?.prepare();
    this.armed = this.options.mode === 'hot' && this.options.sharedAddress?.keepAliveClaim != null;
    this.options.calls.armStandby(this.armed);
    await this.receiver.listen(this.options.listen.address, this.options.listen.port);
    await this.keepalive.start();
    this.sender.start();
    if (this.options.initialRole === 'standby') return;
    // Listen for an active peer first: a relay that comes back must not preempt it.
    await sleep(this.options.keepaliveIntervalMs * (this.options.missed + 2));
    const peer = this.keepalive.peer;
    if (peer?.role === 'active' && this.keepalive.peerAlive) {
      this.emit('role', 'standby', `peer ${peer.node} is active`);
      return;
    }
    await this.serialise(() => this.becomeActive(this.options.initialRole === 'active' ? 'configured active' : 'no active peer'));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loopDelay.disable();
    this.keepalive.close();
    this.sender.close();
    await this.receiver.close();
    await this.io.close();
    if (this.role === 'active') await this.options.sharedAddress?.release();
    await this.options.sharedAddress?.close();
  }

  /** Publishes a new version of an owned call (after offer, answer, endpoint learned). */
  publish(record: CallRecord): void {
    if (!this.remember(record)) return;
    const entry = this.latest.get(record.callId)!;
    this.sender.upsert(entry.bytes, entry.writtenAt);
  }

  /** An owned call ended. */
  unpublish(callId: string, version: number): void {
    const last = this.latest.get(callId);
    this.latest.delete(callId);
    this.sender.remove(callId, Math.max(version, last?.version ?? 0) + 1, this.epoch);
  }

  /** Planned handover to the peer (`rtphub ctl switchover`). */
  async switchover(timeoutMs = 5000): Promise<void> {
    if (this.role !== 'active') throw new Error('only the active relay can switch over');
    if (!this.keepalive.peerAlive || !this.sender.inSyncWithPeer) throw new Error('the peer relay is not reachable and in sync');
    this.handingOver = true;
    this.keepalive.send();
    try {
      this.sender.handover();
      this.stats.switchovers++;
      await this.awaitPeerActive(timeoutMs);
      await this.serialise(() => this.becomeStandby('switchover'));
    } finally {
      this.handingOver = false;
    }
  }

  /** Role forced from outside (keepalived notify script: `rtphub ctl active|standby`). */
  async setRole(role: Role, reason: string): Promise<void> {
    await this.serialise(() => (role === 'active' ? this.becomeActive(reason) : this.becomeStandby(reason)));
  }

  /**
   * This relay forwards the call: published, or adopted at a takeover and not yet republished
   * (a peer's late record must not turn it back into a standby copy meanwhile).
   */
  private owns(callId: string): boolean {
    return this.latest.has(callId) || (this.role === 'active' && this.options.calls.owns(callId));
  }

  /** Keeps the newest record of an owned call (exports may finish out of order); false if older. */
  private remember(record: CallRecord): boolean {
    const current = this.latest.get(record.callId);
    if (current && current.version > record.version) return false;
    record.owner = this.options.nodeId;
    record.epoch = this.epoch;
    this.latest.set(record.callId, { bytes: encodeRecord(record), writtenAt: record.writtenAt, version: record.version });
    return true;
  }

  private async awaitPeerActive(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const taken = (): boolean => this.keepalive.peer?.role === 'active' && this.keepalive.peer.epoch > this.epoch;
    while (!taken() && Date.now() < deadline) await sleep(Math.max(1, this.options.keepaliveIntervalMs / 4));
    if (!taken()) throw new Error('the peer did not take over in time');
  }

  /** The peer handed its calls over: adopt them (and take the active role if not already). */
  private async takeHandover(peer: PeerIdentity): Promise<void> {
    if (this.role === 'standby') {
      await this.becomeActive(`handover from ${peer.node}`);
      return;
    }
    // A split brain resolved in this relay's favour: a newer epoch than both, so this relay's
    // records win everywhere, and the address announced again.
    this.epoch = Math.max(this.epoch, peer.epoch, this.keepalive.peer?.epoch ?? 0) + 1;
    this.tookCalls();
    const { claimed, adopted } = this.claimWhileAdopting();
    await adopted;
    const failure = await claimed;
    if (failure) throw failure;
    this.keepalive.send();
    this.emit('role', 'active', `handover from ${peer.node} (split brain won)`);
    this.republishInBackground();
  }

  private identity(): PeerIdentity {
    return { node: this.options.nodeId, epoch: this.epoch, priority: this.options.priority };
  }

  /** Runs role changes one at a time; the promise rejects with the step's error (also emitted). */
  private serialise(step: () => Promise<void>): Promise<void> {
    const run = this.transition.then(() => (this.closed ? undefined : step()));
    this.transition = run.catch((error: Error) => {
      this.emit('error', error);
    });
    return run;
  }

  /** `serialise` for steps nobody awaits: their error is emitted, never an unhandled rejection. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    return this.serialise(step).catch(() => undefined);
  }

  private onKeepAlive(m: KeepAliveMessage): void {
    const before = this.peerRole;
    this.peerRole = m.role;
    // Both active: a split brain, unless one of them is handing over on purpose.
    if (m.role === 'active' && this.role === 'active' && !m.handover && !this.handingOver) {
      if (!this.splitBrain) this.stats.splitBrains++;
      this.splitBrain = true;
      if (!this.yielding && this.losesTo(m)) {
        this.yielding = true;
        void this.enqueue(() => this.yieldTo(m)).finally(() => (this.yielding = false));
      }
      return;
    }
    if (m.role === 'active' && this.role === 'active') return;
    this.splitBrain = false;
    // The peer just stepped down (switchover, split brain): callers may still have its hardware
    // address for the shared one, if it answered or announced last.
    if (this.role === 'active' && m.role === 'standby' && before === 'active') this.options.sharedAddress?.announce();
  }

  /** Split brain lost: hand the calls over once the link is in sync and step down once it is applied. */
  private async yieldTo(m: KeepAliveMessage): Promise<void> {
    if (this.role !== 'active') return;
    const deadline = Date.now() + 10_000;
    while (!this.sender.inSyncWithPeer && Date.now() < deadline) await sleep(20);
    const sequence = this.sender.handover();
    if (sequence === null) throw new Error(`split brain with ${m.node}: replication link not in sync, staying active`);
    if (!(await this.sender.acknowledged(sequence, 5000))) {
      throw new Error(`split brain with ${m.node}: handover not acknowledged, staying active`);
    }
    await this.becomeStandby(`split brain: ${m.node} wins`);
  }

  /** The deterministic split-brain rule: priority, then epoch, then node id. */
  private losesTo(m: KeepAliveMessage): boolean {
    if (m.priority !== this.options.priority) return m.priority > this.options.priority;
    if (m.epoch !== this.epoch) return m.epoch > this.epoch;
    return m.node < this.options.nodeId;
  }

  private onPeerLost(m: KeepAliveMessage, claimedAt: number): void {
    // A stalled replication connection would hold back the full sync the peer needs when it
    // returns; a reset costs a full sync, so a peer whose keep-alives come and go gets one every
    // few seconds at most.
    const now = Date.now();
    if (now - this.lastReset > RESET_INTERVAL_MS) {
      this.lastReset = now;
      this.sender.reset();
    }
    // The keep-alive thread already answers for the shared address and announced it: the media
    // are taken over; what follows is the call model's side, and it follows even if the peer was
    // heard again meanwhile (two active relays then settle as a split brain).
    if (claimedAt) this.options.sharedAddress?.claimed(claimedAt);
    if (this.role !== 'standby' || m.role !== 'active') return;
    const heard = this.keepalive.stats.lastHeardAt;
    void this.enqueue(async () => {
      if (this.role !== 'standby' || (this.keepalive.peerAlive && !claimedAt)) return;
      if (this.options.mode === 'cold') {
        const dropped = await this.options.calls.dropAll();
        this.stats.droppedCalls += dropped.length;
        this.emit('dropped', dropped);
      }
      await this.becomeActive(`peer ${m.node} lost`, heard);
    });
  }

  /** Takes the calls and the shared address; `lostSince`: when the lost peer was last heard. */
  private async becomeActive(reason: string, lostSince?: number): Promise<void> {
    if (this.role === 'active') return;
    const startedAt = Date.now();
    this.epoch = Math.max(this.epoch, this.keepalive.peer?.epoch ?? 0) + 1;
    this.role = 'active';
    this.tookCalls();
    this.stats.takeovers++;
    // The flip is handed to the workers first (adoptAll does that before it first waits), then
    // the address is claimed and announced while they carry it out: endpoints turn to this relay
    // one network round trip after the announcement, by when the streams forward.
    const { claimed, adopted } = this.claimWhileAdopting();
    await adopted;
    const adoptedAt = Date.now();
    const failure = await claimed;
    if (failure) throw failure;
    if (lostSince !== undefined) {
      const announcedAt = this.options.sharedAddress?.announcedAt ?? adoptedAt;
      // Armed standby copies forward already; otherwise taken over once the streams forward and
      // the address is announced, whichever came last.
      const forwardingAt = this.armed ? announcedAt : adoptedAt;
      this.stats.lastTakeoverMs = Math.max(forwardingAt, announcedAt) - lostSince;
      this.stats.lastTakeoverPhases = {
        detected: startedAt - lostSince,
        forwarding: forwardingAt - lostSince,
        announced: announcedAt - lostSince,
        adopted: adoptedAt - lostSince,
      };
    }
    this.keepalive.send();
    this.emit('role', 'active', reason);
    this.republishInBackground();
  }

  /**
   * The peer's calls are this relay's now: until they are all republished a full sync would lack
   * some, and what the peer sent of them no longer tells what the peer holds (see `synced`).
   */
  private tookCalls(): void {
    this.republishing = true;
    this.peerVersions.clear();
  }

  /**
   * Starts adopting every standby call (their flip posted to the workers), then claims the shared
   * address; calls still being restored wait for the claim (`adoptAll`'s `until`).
   */
  private claimWhileAdopting(): { claimed: Promise<Error | null>; adopted: Promise<number> } {
    let claimSettled: () => void = () => undefined;
    const adopted = this.options.calls.adoptAll(new Promise<void>((resolve) => (claimSettled = resolve)));
    const claimed = this.claimAddress();
    void claimed.then(claimSettled);
    return { claimed, adopted };
  }

  /**
   * Claims the shared address; resolves with the error instead of rejecting (it is awaited later).
   * An announcement that could not go out (the link is down) is reported, not fatal.
   */
  private claimAddress(): Promise<Error | null> {
    const address = this.options.sharedAddress;
    if (!address) return Promise.resolve(null);
    return address.claim().then(
      (unannounced) => {
        if (unannounced) this.emit('error', new Error(`shared address claimed but not announced: ${unannounced.message}`));
        return null;
      },
      (error: Error) => error,
    );
  }

  /**
   * Records of every owned call at the current epoch, then a full sync to the peer. Thousands of
   * exports take a while: this runs outside the role changes (a handover or a split brain must
   * not wait for it) and gives up when the role or the epoch changes meanwhile.
   */
  private republishInBackground(): void {
    const epoch = this.epoch;
    const current = (): boolean => this.role === 'active' && this.epoch === epoch && !this.closed;
    this.republishing = true;
    void (async () => {
      for await (const record of this.options.calls.ownRecords(this.options.nodeId, epoch)) {
        if (!current()) return;
        this.remember(record);
      }
      if (!current()) return;
      this.republishing = false;
      this.sender.resync();
    })().catch((error: Error) => this.emit('error', error));
  }

  private async becomeStandby(reason: string): Promise<void> {
    if (this.role === 'standby') return;
    this.role = 'standby';
    this.splitBrain = false;
    this.republishing = false;
    this.stats.stepDowns++;
    await this.options.sharedAddress?.release();
    await this.options.calls.yieldAll();
    this.latest.clear();
    this.keepalive.send();
    this.emit('role', 'standby', reason);
  }

  /**
   * Records wait for a role change under way: one applied in the middle of a takeover (after the
   * calls were adopted, before they count as owned) would turn a call back into a standby copy.
   */
  private sink(): RecordSink {
    return {
      upsert: async (record: CallRecord, from: PeerIdentity) => {
        await this.transition;
        const known = this.peerVersions.get(record.callId);
        if (known && record.version < known.version) {
          throw new RecordFormatError(`stale record for ${record.callId}: version ${record.version} after ${known.version}`);
        }
        // A full sync repeats what is held already; a counters refresh keeps the version, not the write time.
        const same = known && known.version === record.version && known.epoch === record.epoch && known.writtenAt >= record.writtenAt;
        if (same && this.options.calls.holds(record.callId)) return;
        if (this.owns(record.callId)) {
          if (record.epoch <= this.epoch) {
            throw new RecordFormatError(`record for ${record.callId} from ${from.node} (epoch ${record.epoch}), but this relay owns that call`);
          }
          this.latest.delete(record.callId);
        }
        this.peerVersions.set(record.callId, { version: record.version, epoch: record.epoch, writtenAt: record.writtenAt, node: from.node });
        this.options.calls.queueRestore(record);
      },
      remove: async (callId: string, version: number, epoch: number, from: PeerIdentity) => {
        await this.transition;
        if ((this.peerVersions.get(callId)?.version ?? 0) > version) return;
        if (this.owns(callId)) {
          if (epoch <= this.epoch) throw new RecordFormatError(`delete of ${callId} from ${from.node} (epoch ${epoch}), but this relay owns that call`);
          this.latest.delete(callId);
        }
        this.peerVersions.delete(callId);
        this.options.calls.queueForget(callId);
      },
      // Acknowledged once the calls are taken: the peer steps down only then.
      handover: (from: PeerIdentity) => this.serialise(() => this.takeHandover(from)),
      // A partial full sync (the peer is still writing the records of calls it took over) says
      // nothing of the calls it lacks: they are kept.
      synced: async (callIds: Set<string>, from: PeerIdentity, partial: boolean) => {
        await this.transition;
        if (partial) return;
        // Only copies of this peer's calls go: not this relay's own, yielded after the sync left
        // the peer (a split brain lost, a switchover), which the peer will adopt, nor another
        // peer's.
        for (const id of this.options.calls.standbyCallIds()) {
          if (callIds.has(id) || this.peerVersions.get(id)?.node !== from.node) continue;
          this.peerVersions.delete(id);
          this.options.calls.queueForget(id);
        }
      },
    };
  }
}
