/**
 * The call model as the HA node sees it: turns calls into restoration records (with each media
 * stream's data-plane record, exported by its worker) and records back into calls held on
 * standby (streams imported bound but not forwarding), and flips them when a relay takes over or
 * steps down. Armed (`armStandby`: the shared address held on `lo`, answered only by the active
 * relay) the standby streams forward from the start: no packet reaches them until this relay
 * answers for the address, and then they must forward at once, without waiting for a flip.
 *
 * Rebuilding a standby call waits on the data plane twice (close the old streams, import the new
 * ones), so records are applied in the background: `queueRestore()` and `queueForget()` only queue
 * the change, the newest change of a call replacing one not yet started (each waits COALESCE_MS
 * for newer ones first); changes of one call are applied in order, different calls at once (at
 * most APPLY_CONCURRENCY). The replication link
 * acknowledges a record once it is accepted, not once its sockets are bound. A takeover does not
 * wait for what is still queued: it flips the standby copies it has, and calls rebuilt later are
 * flipped (and handed to `onAdopted`) as they come.
 */
import { Call } from '../calls/call';
import { monotonicMs } from '../calls/clock';
import type { CallRegistry } from '../calls/call-registry';
import { MediaSession, SideState } from '../calls/media-session';
import type { Relay } from '../native/relay';
import type { ReplicatedCalls } from './ha-node';
import type { CallRecord, MediaRecord, SideRecord } from './restoration-record';

function sideRecord(s: SideState): SideRecord {
  return {
    signalled: s.signalled,
    signalledRtcp: s.signalledRtcp,
    learned: s.learned,
    learnedRtcp: s.learnedRtcp,
    rtcpMux: s.rtcpMux,
    direction: s.direction,
    codecs: s.codecs.map((c) => ({ ...c })),
    interfaceName: s.interfaceName,
    initialized: s.initialized,
    send: s.send,
    recv: s.recv,
    ice: s.ice,
    singlePort: s.singlePort,
  };
}

function restoreSide(target: SideState, r: SideRecord): void {
  Object.assign(target, { ...r, codecs: r.codecs.map((c) => ({ ...c })) });
}

const APPLY_CONCURRENCY = 64;
/**
 * A standby call's changes wait this long before the newest is applied: a call set up in a burst
 * (offer, answer, each endpoint learned, within tens of milliseconds) is rebuilt once or twice
 * instead of once per change, which at 1,000 setups/s is thousands of sockets closed and bound
 * again every second on the standby. A takeover ends every wait at once.
 */
const COALESCE_MS = 50;
const EXPORT_BATCH = 64;

export class CallBridge implements ReplicatedCalls {
  /** Records that failed to apply (ports taken, malformed stream records), each reported to `onError`. */
  restoreFailures = 0;
  /** A call rebuilt from a queued record after this relay took over (it must publish it now). */
  onAdopted: (call: Call) => void = () => undefined;
  /** This relay is active: rebuilt calls are owned, not standby copies. */
  private owning = false;
  /** Standby copies forward (HaNode `armed`): their streams are imported active and never deactivated. */
  private armed = false;
  /** Queued changes start only once this settles (a takeover under way comes first). */
  private hold: Promise<void> = Promise.resolve();
  /** Per call, the newest change not yet started: a record, or null to forget the call. */
  private readonly waiting = new Map<string, CallRecord | null>();
  private readonly applying = new Set<string>();
  private running = 0;
  private readonly slots: Array<() => void> = [];
  private readonly idle: Array<() => void> = [];
  /** Changes waiting out COALESCE_MS: each ends its wait early when called. */
  private readonly coalescing = new Set<() => void>();

  constructor(
    private readonly calls: CallRegistry,
    private readonly relay: Relay,
    private readonly onError: (error: Error, callId: string) => void = () => undefined,
  ) {}

  /** The restoration record of one call, its streams exported by their workers. */
  async record(call: Call, owner: string, epoch: number): Promise<CallRecord> {
    const media: MediaRecord[] = [];
    for (const m of call.media) {
      if (!m) continue;
      media.push({
        index: m.index,
        type: m.type,
        protocol: m.protocol,
        rejected: m.rejected,
        offererOfferedMux: m.mux.offererOffered,
        relayOfferedMux: m.mux.relayOffered,
        answerDecidesMux: m.mux.answerDecides,
        a: sideRecord(m.sides.a),
        b: sideRecord(m.sides.b),
        stream: m.stream && !m.stream.closed ? await m.stream.export().catch(() => null) : null,
      });
    }
    const sent = (side: 'a' | 'b') => ({
      sessionName: call.sent[side].sessionName,
      version: call.sent[side].version?.toString(),
      last: call.sent[side].last,
    });
    return {
      callId: call.callId,
      version: Math.max(1, call.version),
      owner,
      epoch,
      writtenAt: Date.now(),
      created: Math.round(call.created * 1000),
      lastSignal: Math.round(call.lastSignal * 1000),
      answered: call.answered,
      ...(call.answeredAt !== null ? { answeredAt: call.answeredAt } : {}),
      sideA: call.sides.a,
      sideB: call.sides.b,
      parties: [...call.parties.values()].map((p) => ({ tag: p.tag, ...(p.viaBranch ? { viaBranch: p.viaBranch } : {}), labels: { ...p.labels } })),
      media,
      sent: { a: sent('a'), b: sent('b') },
      ...(call.untaggedViaBranch ? { untaggedViaBranch: call.untaggedViaBranch } : {}),
      ...(call.deleteAtMono !== null ? { deleteInMs: Math.max(0, Math.round(call.deleteAtMono - monotonicMs())) } : {}),
    };
  }

  /** Records of every owned call, exported EXPORT_BATCH at a time. */
  async *ownRecords(owner: string, epoch: number): AsyncIterable<CallRecord> {
    const owned = [...this.calls.calls.values()].filter((c) => !c.standby && !c.ended);
    for (let i = 0; i < owned.length; i += EXPORT_BATCH) {
      const batch = owned.slice(i, i + EXPORT_BATCH).filter((c) => !c.standby && !c.ended);
      yield* await Promise.all(batch.map((c) => this.record(c, owner, epoch)));
    }
  }

  /** Queues rebuilding a peer's call on standby from its record (the replication stream). */
  queueRestore(record: CallRecord): void {
    this.schedule(record.callId, record);
  }

  /** Queues removing a peer's standby call. */
  queueForget(callId: string): void {
    this.schedule(callId, null);
  }

  /** Rebuilds a call from its record now (a store adopting a failed relay's calls); throws if it cannot. */
  restore(record: CallRecord): Promise<void> {
    return this.rebuild(record);
  }

  /**
   * A takeover need not wait for counter refreshes not yet started (a record of the version the
   * standby copy already has): the copy forwards the same way, its counters are a little older.
   */
  private dropQueuedRefreshes(): void {
    for (const [callId, change] of this.waiting) {
      if (!change) continue;
      const held = this.calls.get(callId);
      if (held?.standby && held.version === change.version) this.waiting.delete(callId);
    }
  }

  /** Resolves once every queued change has been applied. */
  settle(): Promise<void> {
    if (this.waiting.size === 0 && this.applying.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(callId: string, change: CallRecord | null): void {
    this.waiting.set(callId, change);
    if (!this.applying.has(callId)) void this.drain(callId);
  }

  private async drain(callId: string): Promise<void> {
    this.applying.add(callId);
    while (this.waiting.has(callId)) {
      await this.coalesce();
      await this.slot();
      const change = this.waiting.get(callId);
      this.waiting.delete(callId);
      try {
        if (change) await this.rebuild(change);
        else if (change === null) await this.calls.forget(callId);
      } catch (error) {
        this.restoreFailures++;
        this.onError(error as Error, callId);
      } finally {
        this.release();
      }
    }
    this.applying.delete(callId);
    if (this.waiting.size === 0 && this.applying.size === 0) for (const wake of this.idle.splice(0)) wake();
  }

  /** Waits COALESCE_MS for newer changes of the same call, unless this relay owns its calls now. */
  private coalesce(): Promise<void> {
    if (this.owning) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.coalescing.delete(done);
        resolve();
      };
      const timer = setTimeout(done, COALESCE_MS);
      this.coalescing.add(done);
    });
  }

  private async slot(): Promise<void> {
    await this.hold;
    if (this.running < APPLY_CONCURRENCY) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.slots.push(resolve));
  }

  private release(): void {
    const next = this.slots.shift();
    if (next) next();
    else this.running--;
  }

  /** Rebuilds a peer's call on standby; an older copy is removed first so its ports are free. */
  private async rebuild(record: CallRecord): Promise<void> {
    await this.calls.forget(record.callId);
    const call = new Call(record.callId, record.created / 1000);
    call.standby = true;
    call.version = record.version;
    call.lastSignal = record.lastSignal / 1000;
    call.answered = record.answered;
    // A record from a relay that predates `aa`: answered as of when this relay learned it.
    call.answeredAt = record.answeredAt ?? call.answeredAt ?? (record.answered ? Date.now() : null);
    call.sides.a = record.sideA;
    call.sides.b = record.sideB;
    call.untaggedViaBranch = record.untaggedViaBranch;
    // A delayed delete goes on from where the owner was (the sweep ends it once this relay owns it).
    if (record.deleteInMs !== undefined) call.deleteAtMono = monotonicMs() + record.deleteInMs;
    for (const p of record.parties) Object.assign(call.party(p.tag), { viaBranch: p.viaBranch, labels: { ...p.labels } });
    for (const side of ['a', 'b'] as const) {
      const s = record.sent[side];
      call.sent[side] = { sessionName: s.sessionName, version: s.version === undefined ? undefined : BigInt(s.version), last: s.last };
    }
    try {
      for (const m of record.media) call.media[m.index] = await this.restoreMedia(m);
    } catch (error) {
      await Promise.all(call.media.map((m) => m?.release()));
      throw error;
    }
    await this.calls.insert(call);
    if (this.owning) await this.own(call);
  }

  /** A call rebuilt after this relay took over: it forwards and is this relay's to publish. */
  private async own(call: Call): Promise<void> {
    for (const media of call.media) {
      if (media?.stream && !media.stream.closed) await this.relay.activate(media.stream);
    }
    if (!this.owning || call.ended) {
      // Stepped down meanwhile: back to standby (armed copies go on forwarding, as every other).
      if (this.armed) return;
      for (const media of call.media) if (media?.stream && !media.stream.closed) await this.relay.deactivate(media.stream);
      return;
    }
    call.standby = false;
    call.lastMediaMono = monotonicMs();
    this.onAdopted(call);
  }

  private async restoreMedia(r: MediaRecord): Promise<MediaSession> {
    const media = new MediaSession(r.index, r.type, r.protocol, { a: r.a.interfaceName, b: r.b.interfaceName });
    media.rejected = r.rejected;
    media.mux = { offererOffered: r.offererOfferedMux, relayOffered: r.relayOfferedMux, answerDecides: r.answerDecidesMux };
    restoreSide(media.sides.a, r.a);
    restoreSide(media.sides.b, r.b);
    if (r.stream) media.stream = await this.relay.importStream(r.stream, { standby: !this.armed });
    return media;
  }

  /** A standby copy is held, or queued. */
  holds(callId: string): boolean {
    if (this.waiting.has(callId)) return this.waiting.get(callId) !== null;
    const call = this.calls.get(callId);
    return call !== undefined && call.standby && !call.ended;
  }

  table(): Array<{ callId: string; version: number; standby: boolean }> {
    return [...this.calls.calls.values()].map((c) => ({ callId: c.callId, version: c.version, standby: c.standby }));
  }

  owns(callId: string): boolean {
    const call = this.calls.get(callId);
    return call !== undefined && !call.standby && !call.ended;
  }

  /** Standby calls held or queued, less those queued to be forgotten. */
  standbyCallIds(): string[] {
    const ids = new Set([...this.calls.calls.values()].filter((c) => c.standby).map((c) => c.callId));
    for (const [id, change] of this.waiting) {
      if (change) ids.add(id);
      else ids.delete(id);
    }
    return [...ids];
  }

  /**
   * Takes every standby call over at once. Changes still queued are not waited for: they go on in
   * the background once `until` settles (the rest of the takeover: the address) and the calls they
   * rebuild are owned (`onAdopted`); counter refreshes not yet started are dropped.
   */
  async adoptAll(until?: Promise<unknown>): Promise<number> {
    this.owning = true;
    if (until) this.hold = until.then(() => undefined, () => undefined);
    for (const done of [...this.coalescing]) done();
    this.dropQueuedRefreshes();
    const adopted = [...this.calls.calls.values()].filter((c) => c.standby);
    await this.relay.activate();
    for (const call of adopted) {
      call.standby = false;
      call.lastMediaMono = monotonicMs();
    }
    return adopted.length;
  }

  async dropAll(): Promise<string[]> {
    await this.settle();
    const ids = this.standbyCallIds();
    for (const id of ids) await this.calls.forget(id);
    return ids;
  }

  armStandby(armed: boolean): void {
    this.armed = armed;
  }

  async yieldAll(): Promise<number> {
    this.owning = false;
    const owned = [...this.calls.calls.values()].filter((c) => !c.standby);
    // Armed: packets that still reach this relay (callers that have not yet heard the new active
    // relay's announcement) are forwarded rather than dropped.
    if (!this.armed) await this.relay.deactivate();
    for (const call of owned) call.standby = true;
    return owned.length;
  }

  sessions(): number {
    return this.calls.size;
  }
}
