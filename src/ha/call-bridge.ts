/**
 * The call model as the HA node sees it: turns calls into restoration records (with each media
 * stream's data-plane record, exported by its worker) and records back into calls held on
 * standby (streams imported bound but not forwarding), and flips them when a relay takes over or
 * steps down.
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

export class CallBridge implements ReplicatedCalls {
  constructor(
    private readonly calls: CallRegistry,
    private readonly relay: Relay,
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
      sideA: call.sides.a,
      sideB: call.sides.b,
      parties: [...call.parties.values()].map((p) => ({ tag: p.tag, ...(p.viaBranch ? { viaBranch: p.viaBranch } : {}), labels: { ...p.labels } })),
      media,
      sent: { a: sent('a'), b: sent('b') },
      ...(call.untaggedViaBranch ? { untaggedViaBranch: call.untaggedViaBranch } : {}),
    };
  }

  async *ownRecords(owner: string, epoch: number): AsyncIterable<CallRecord> {
    for (const call of [...this.calls.calls.values()]) {
      if (call.standby || call.ended) continue;
      yield await this.record(call, owner, epoch);
    }
  }

  /** Rebuilds a peer's call on standby; an older copy is removed first so its ports are free. */
  async restore(record: CallRecord): Promise<void> {
    await this.calls.forget(record.callId);
    const call = new Call(record.callId, record.created / 1000);
    call.standby = true;
    call.version = record.version;
    call.lastSignal = record.lastSignal / 1000;
    call.answered = record.answered;
    call.sides.a = record.sideA;
    call.sides.b = record.sideB;
    call.untaggedViaBranch = record.untaggedViaBranch;
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
  }

  private async restoreMedia(r: MediaRecord): Promise<MediaSession> {
    const media = new MediaSession(r.index, r.type, r.protocol, { a: r.a.interfaceName, b: r.b.interfaceName });
    media.rejected = r.rejected;
    media.mux = { offererOffered: r.offererOfferedMux, relayOffered: r.relayOfferedMux, answerDecides: r.answerDecidesMux };
    restoreSide(media.sides.a, r.a);
    restoreSide(media.sides.b, r.b);
    if (r.stream) media.stream = await this.relay.importStream(r.stream, { standby: true });
    return media;
  }

  forget(callId: string): Promise<void> {
    return this.calls.forget(callId);
  }

  standbyCallIds(): string[] {
    return [...this.calls.calls.values()].filter((c) => c.standby).map((c) => c.callId);
  }

  async adoptAll(): Promise<number> {
    const adopted = [...this.calls.calls.values()].filter((c) => c.standby);
    await this.relay.activate();
    for (const call of adopted) {
      call.standby = false;
      call.lastMediaMono = monotonicMs();
    }
    return adopted.length;
  }

  async dropAll(): Promise<string[]> {
    const ids = this.standbyCallIds();
    for (const id of ids) await this.calls.forget(id);
    return ids;
  }

  async yieldAll(): Promise<number> {
    const owned = [...this.calls.calls.values()].filter((c) => !c.standby);
    await this.relay.deactivate();
    for (const call of owned) call.standby = true;
    return owned.length;
  }

  sessions(): number {
    return this.calls.size;
  }
}
