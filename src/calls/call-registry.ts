/**
 * The call model every control front drives: offer creates or updates a call's media (a relay
 * stream per m= line) and returns the SDP rewritten to put the relay in the path; answer
 * completes it; delete ends it (after the delete delay); timeouts end calls whose media stopped.
 * It is the one source of truth about calls: fronts hold call-ids, never streams.
 *
 * Invariants: a call's operations run one at a time (Call.exclusive); a media session owns at
 * most one relay stream, closed when the m= line is rejected or the call ends; every ended call
 * is reported once through the `ended` event with its reason.
 */
import { EventEmitter } from 'node:events';
import { PortsExhaustedError } from '../errors';
import type { Relay, Stream } from '../native/relay';
import type { Endpoint, LearningMode, LegOptions, LegSide } from '../native/types';
import { SdpError } from '../sdp/errors';
import { MediaSummary, parseSdp, ParsedSdp } from '../sdp/parse';
import { MediaPlan, rewriteSdp } from '../sdp/rewrite';
import { Call } from './call';
import { monotonicMs } from './clock';
import { CallError } from './errors';
import { MediaSession, SideState } from './media-session';
import type { CallTimeouts, DeleteOptions, EndReason, SignalOptions } from './types';

export interface RelayInterface {
  name: string;
  address: string;
  advertised: string;
}

export interface CallRegistryOptions {
  relay: Relay;
  interfaces: readonly RelayInterface[];
  timeouts: CallTimeouts;
  learning: LearningMode;
  /** Most calls at once (0 = no limit). */
  maxSessions: number;
  /** How often timeouts are checked (ms). */
  sweepIntervalMs?: number;
}

export interface CallRegistryEvents {
  ended: [call: Call, reason: EndReason];
}

export interface CallTotals {
  managed: number;
  rejected: number;
  ended: Record<EndReason, number>;
}

const other = (side: LegSide): LegSide => (side === 'a' ? 'b' : 'a');

export class CallRegistry extends EventEmitter<CallRegistryEvents> {
  readonly calls = new Map<string, Call>();
  readonly totals: CallTotals = {
    managed: 0,
    rejected: 0,
    ended: { deleted: 0, timeout: 0, 'silent-timeout': 0, 'offer-timeout': 0, 'final-timeout': 0, shutdown: 0 },
  };
  private readonly byStream = new Map<number, { call: Call; media: MediaSession }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly relay: Relay;

  constructor(private readonly options: CallRegistryOptions) {
    super();
    this.relay = options.relay;
    this.relay.on('learned', (e) => this.onLearned(e.streamId, e.leg, e.kind, e.endpoint));
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.calls.size;
  }

  /** True when a new call would exceed the configured session limit. */
  atCapacity(): boolean {
    return this.options.maxSessions > 0 && this.calls.size >= this.options.maxSessions;
  }

  get(callId: string): Call | undefined {
    return this.calls.get(callId);
  }

  /** An offer from `fromTag`: returns the SDP to pass on to the other party. */
  async offer(o: SignalOptions): Promise<Buffer> {
    const parsed = this.parse(o.sdp);
    let call = this.calls.get(o.callId);
    if (!call) {
      if (this.atCapacity()) {
        this.totals.rejected++;
        throw new CallError('Parallel session limit reached');
      }
      call = new Call(o.callId);
      this.calls.set(o.callId, call);
      this.totals.managed++;
    }
    const target = call;
    return target.exclusive(async () => {
      try {
        return await this.applyOffer(target, o, parsed);
      } catch (error) {
        if (!target.answered && target.media.every((m) => !m.stream)) await this.end(target, 'deleted', false);
        throw error;
      }
    });
  }

  /** The answer of `toTag` to `fromTag`'s offer: returns the SDP to pass back to the offerer. */
  async answer(o: SignalOptions): Promise<Buffer> {
    const parsed = this.parse(o.sdp);
    const call = this.calls.get(o.callId);
    if (!call || call.ended) throw new CallError('Unknown call-id');
    return call.exclusive(() => this.applyAnswer(call, o, parsed));
  }

  /** Schedules the end of a call (or ends it now with delay 0); returns the call for its stats. */
  async delete(o: DeleteOptions): Promise<Call> {
    const call = this.calls.get(o.callId);
    const tagsMatch = (tag?: string): boolean => !tag || call!.parties.has(tag);
    if (!call || call.ended || !tagsMatch(o.fromTag) || !tagsMatch(o.toTag)) {
      throw new CallError("Call-ID not found or tags didn't match");
    }
    this.refreshMedia(call);
    const delay = o.delay ?? this.options.timeouts.deleteDelay;
    if (delay <= 0) await call.exclusive(() => this.end(call, 'deleted'));
    else call.deleteAtMono = monotonicMs() + delay * 1000;
    return call;
  }

  /** Ends every call (relay shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.calls.values()].map((c) => c.exclusive(() => this.end(c, 'shutdown'))));
  }

  private parse(sdp: Buffer): ParsedSdp {
    try {
      return parseSdp(sdp);
    } catch (error) {
      if (error instanceof SdpError) throw new CallError('Failed to parse SDP', error.message);
      throw error;
    }
  }

  private async applyOffer(call: Call, o: SignalOptions, parsed: ParsedSdp): Promise<Buffer> {
    call.signalled();
    const party = call.party(o.fromTag, o.viaBranch);
    Object.assign(party.labels, o.labels ?? {});
    if (o.toTag) call.party(o.toTag);
    const side = call.sideOf(o.fromTag);
    if (o.toTag) call.sideOf(o.toTag);
    const plans: Array<MediaPlan | undefined> = [];
    for (const m of parsed.summary.media) plans.push(await this.offerMedia(call, m, side, o));
    return this.rewrite(parsed, plans, o);
  }

  private async offerMedia(call: Call, m: MediaSummary, side: LegSide, o: SignalOptions): Promise<MediaPlan | undefined> {
    let media = call.media[m.index];
    if (!media) {
      media = new MediaSession(m.index, m.type, m.protocol, this.interfaceNames(o, side));
      call.media[m.index] = media;
    }
    media.type = m.type;
    media.protocol = m.protocol;
    if (m.rejected) {
      media.rejected = true;
      await this.releaseMedia(media);
      return undefined;
    }
    media.rejected = false;
    this.signal(media.sides[side], m, o);
    const mux = o.rtcpMux ?? [];
    media.mux.offererOffered = m.rtcpMux;
    media.mux.relayOffered = !mux.includes('demux') && !mux.includes('reject') && (m.rtcpMux || mux.includes('offer') || mux.includes('require'));
    const legOptions = this.legOptions(media.sides[side], o);
    if (!media.stream) {
      const peer = other(side);
      const peerOptions: LegOptions = {
        localAddress: this.interfaceFor(media.sides[peer].interfaceName).address,
        learning: o.learning ?? this.options.learning,
      };
      media.stream = await this.createStream(side === 'a' ? { a: legOptions, b: peerOptions } : { a: peerOptions, b: legOptions });
      this.byStream.set(media.stream.id, { call, media });
    } else {
      await media.stream.update({ [side]: legOptions });
    }
    return this.plan(media, other(side), media.mux.relayOffered, o);
  }

  private async applyAnswer(call: Call, o: SignalOptions, parsed: ParsedSdp): Promise<Buffer> {
    call.signalled();
    const answerer = o.toTag ?? '';
    const party = call.party(answerer, o.viaBranch);
    Object.assign(party.labels, o.labels ?? {});
    const side = call.sideOf(answerer);
    const plans: Array<MediaPlan | undefined> = [];
    for (const m of parsed.summary.media) plans.push(await this.answerMedia(call, m, side, o));
    call.answered = true;
    return this.rewrite(parsed, plans, o);
  }

  private async answerMedia(call: Call, m: MediaSummary, side: LegSide, o: SignalOptions): Promise<MediaPlan | undefined> {
    const media = call.media[m.index];
    if (!media || !media.stream) return undefined;
    if (m.rejected) {
      media.rejected = true;
      await this.releaseMedia(media);
      return undefined;
    }
    this.signal(media.sides[side], m, o);
    const offerer = other(side);
    const mux = o.rtcpMux ?? [];
    const answererMux = m.rtcpMux && media.mux.relayOffered;
    const offererMux =
      media.mux.offererOffered &&
      !mux.includes('reject') &&
      (answererMux || mux.includes('accept') || mux.includes('demux') || mux.includes('require'));
    media.sides[side].rtcpMux = answererMux;
    media.sides[offerer].rtcpMux = offererMux;
    await media.stream.update({
      [side]: { ...this.legOptions(media.sides[side], o), rtcpMux: answererMux },
      [offerer]: { rtcpMux: offererMux },
    });
    return this.plan(media, offerer, offererMux, o);
  }

  /** Records what a party signalled for one m= line. */
  private signal(state: SideState, m: MediaSummary, o: SignalOptions): void {
    const address = o.sourceAddress ?? m.connection?.address;
    const known = address !== undefined && !m.zeroAddress;
    state.signalled = known ? { address, port: m.port } : null;
    state.signalledRtcp = null;
    if (known && !m.rtcpMux) {
      state.signalledRtcp = { address: o.sourceAddress ?? m.rtcp?.address?.address ?? address, port: m.rtcp?.port ?? m.port + 1 };
    }
    state.rtcpMux = m.rtcpMux;
    state.direction = m.direction;
    state.codecs = m.codecs;
  }

  private legOptions(state: SideState, o: SignalOptions): LegOptions {
    return {
      remote: state.signalled,
      remoteRtcp: state.signalledRtcp ?? (state.signalled ? { ...state.signalled } : null),
      learning: o.learning ?? this.options.learning,
      asymmetric: o.asymmetric ?? false,
      strictSource: o.strictSource ?? false,
    };
  }

  private plan(media: MediaSession, facing: LegSide, rtcpMux: boolean, o: SignalOptions): MediaPlan {
    const stream = media.stream as Stream;
    const leg = stream[facing];
    const iface = this.interfaceFor(media.sides[facing].interfaceName);
    return {
      address: o.mediaAddress ?? iface.advertised,
      port: leg.localPort,
      rtcpPort: rtcpMux ? leg.localPort : leg.localPort + 1,
      rtcpMux,
    };
  }

  private rewrite(parsed: ParsedSdp, media: Array<MediaPlan | undefined>, o: SignalOptions): Buffer {
    try {
      return rewriteSdp(parsed, {
        media,
        replace: o.replace,
        ice: o.ice ?? 'default',
        noRtcpAttribute: o.noRtcpAttribute,
        fullRtcpAttribute: o.fullRtcpAttribute,
      });
    } catch (error) {
      if (error instanceof SdpError) throw new CallError('Incomplete SDP specification', error.message);
      throw error;
    }
  }

  private async createStream(options: { a: LegOptions; b: LegOptions }): Promise<Stream> {
    try {
      return await this.relay.createStream(options);
    } catch (error) {
      if (error instanceof PortsExhaustedError) throw new CallError('Ran out of ports', error.message);
      throw error;
    }
  }

  private interfaceNames(o: SignalOptions, offerer: LegSide): Record<LegSide, string> {
    const names = this.options.interfaces.map((i) => i.name);
    const pick = (wanted?: string): string => (wanted && names.includes(wanted) ? wanted : names[0]);
    const [from, to] = o.direction ?? [];
    const offererName = pick(from);
    let otherName = pick(to);
    if (o.addressFamily) {
      const family = o.addressFamily === 'IP6' ? ':' : '.';
      const match = this.options.interfaces.find((i) => i.address.includes(family));
      if (match && !to) otherName = match.name;
    }
    return offerer === 'a' ? { a: offererName, b: otherName } : { a: otherName, b: offererName };
  }

  private interfaceFor(name: string): RelayInterface {
    return this.options.interfaces.find((i) => i.name === name) ?? this.options.interfaces[0];
  }

  private async releaseMedia(media: MediaSession): Promise<void> {
    if (media.stream) this.byStream.delete(media.stream.id);
    await media.release();
  }

  private async end(call: Call, reason: EndReason, count = true): Promise<void> {
    if (call.ended) return;
    call.ended = true;
    this.calls.delete(call.callId);
    await Promise.all(call.media.map((m) => this.releaseMedia(m)));
    if (count) this.totals.ended[reason]++;
    this.emit('ended', call, reason);
  }

  private onLearned(streamId: number, leg: LegSide, kind: 'rtp' | 'rtcp', endpoint: Endpoint): void {
    const entry = this.byStream.get(streamId);
    if (!entry) return;
    if (kind === 'rtp') entry.media.sides[leg].learned = endpoint;
    else entry.media.sides[leg].learnedRtcp = endpoint;
  }

  /** Updates the call's last media time from the legs' counters. */
  refreshMedia(call: Call): void {
    for (const media of call.media) {
      if (!media.stream) continue;
      const counters = media.stream.counters();
      call.lastMediaMono = Math.max(call.lastMediaMono, counters.a.last_packet_ms, counters.b.last_packet_ms);
    }
  }

  /** Ends calls whose delete delay passed, or whose media or signalling timed out. */
  private sweep(): void {
    const now = monotonicMs();
    const t = this.options.timeouts;
    for (const call of this.calls.values()) {
      const reason = this.expired(call, now, t);
      if (reason) void call.exclusive(() => this.end(call, reason));
    }
  }

  private expired(call: Call, now: number, t: CallTimeouts): EndReason | null {
    if (call.deleteAtMono !== null && now >= call.deleteAtMono) return 'deleted';
    if (t.finalTimeout > 0 && now - call.createdMono >= t.finalTimeout * 1000) return 'final-timeout';
    if (!call.answered) return now - call.lastSignalMono >= t.offerTimeout * 1000 ? 'offer-timeout' : null;
    const limit = (call.onHold() ? t.silentTimeout : t.timeout) * 1000;
    const since = (): number => now - Math.max(call.lastMediaMono, call.lastSignalMono);
    if (since() < limit) return null;
    this.refreshMedia(call);
    if (since() < limit) return null;
    return call.onHold() ? 'silent-timeout' : 'timeout';
  }
}
