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
import { isZeroAddress, MediaSummary, parseSdp, ParsedSdp } from '../sdp/parse';
import { MediaPlan, RewriteOptions, rewriteSdp } from '../sdp/rewrite';
import { Call } from './call';
import { monotonicMs } from './clock';
import { CallError } from './errors';
import { MediaSession, sendClockRate, SideState } from './media-session';
import type { CallTimeouts, DeleteOptions, EndReason, RtcpMuxOption, SignalOptions } from './types';

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
  /** A change a standby relay must know about: offer, answer, endpoint learned. */
  changed: [call: Call];
  /** A media session's stream is about to close (its counters are still readable). */
  releasing: [call: Call, media: MediaSession];
}

export interface CallTotals {
  managed: number;
  rejected: number;
  ended: Record<EndReason, number>;
}

const other = (side: LegSide): LegSide => (side === 'a' ? 'b' : 'a');

/** A signalled endpoint the relay may send to: not the zero (hold) address, not port 0. */
const sendable = (e: Endpoint | null): Endpoint | null => (e && e.port !== 0 && !isZeroAddress(e.address) ? e : null);

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
      // ended while this offer waited its turn: the call-id starts a new call
      if (target.ended) return this.offer(o);
      try {
        const sdp = await this.applyOffer(target, o, parsed);
        this.changed(target);
        return sdp;
      } catch (error) {
        // rtpengine destroys the whole call when it runs out of ports, even on a re-offer
        const outOfPorts = error instanceof CallError && error.reason === 'Ran out of ports';
        if (outOfPorts || (!target.answered && target.media.every((m) => !m.stream))) await this.end(target, 'deleted', false);
        throw error;
      }
    });
  }

  /** The answer of `toTag` to `fromTag`'s offer: returns the SDP to pass back to the offerer. */
  async answer(o: SignalOptions): Promise<Buffer> {
    const parsed = this.parse(o.sdp);
    const call = this.calls.get(o.callId);
    if (!call || call.ended) throw new CallError('Unknown call-id');
    return call.exclusive(async () => {
      if (call.ended) throw new CallError('Unknown call-id');
      const sdp = await this.applyAnswer(call, o, parsed);
      this.changed(call);
      return sdp;
    });
  }

  /**
   * Schedules the end of a call (or ends it now with delay 0). `snapshot` runs before the media is
   * released, so a delete reply can carry the call's final statistics.
   */
  async delete<T>(o: DeleteOptions, snapshot?: (call: Call) => T): Promise<T | undefined> {
    const call = this.calls.get(o.callId);
    const tagsMatch = (tag?: string): boolean => !tag || call!.parties.has(tag);
    if (!call || call.ended || !tagsMatch(o.fromTag) || !tagsMatch(o.toTag)) {
      throw new CallError("Call-ID not found or tags didn't match");
    }
    this.refreshMedia(call);
    const result = snapshot?.(call);
    // a negative delay asks for the default, as in rtpengine
    const delay = o.delay !== undefined && o.delay >= 0 ? o.delay : this.options.timeouts.deleteDelay;
    if (delay <= 0) await call.exclusive(() => this.end(call, 'deleted'));
    else call.deleteAtMono = monotonicMs() + delay * 1000;
    return result;
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
      if (!(error instanceof SdpError)) throw error;
      throw new CallError(error.reason === 'Incomplete SDP specification' ? error.reason : 'Failed to parse SDP', error.message);
    }
  }

  private async applyOffer(call: Call, o: SignalOptions, parsed: ParsedSdp): Promise<Buffer> {
    call.signalled();
    const party = call.party(o.fromTag);
    Object.assign(party.labels, o.labels ?? {});
    if (o.toTag) call.party(o.toTag);
    const side = call.sideOf(o.fromTag);
    if (o.toTag) call.sideOf(o.toTag);
    call.branchTo(other(side), o.viaBranch);
    const plans: Array<MediaPlan | undefined> = [];
    for (const m of parsed.summary.media) plans.push(await this.offerMedia(call, m, side, o));
    return this.rewrite(call, other(side), parsed, plans, o);
  }

  private async offerMedia(call: Call, m: MediaSummary, side: LegSide, o: SignalOptions): Promise<MediaPlan | undefined> {
    let media = call.media[m.index];
    if (!media) {
      media = new MediaSession(m.index, m.type, m.protocol, this.interfaceNames(o, side));
      call.media[m.index] = media;
    }
    media.type = m.type;
    media.protocol = m.protocol;
    this.signal(media, side, m, o);
    media.rejected = m.rejected;
    if (m.rejected) {
      await this.releaseMedia(call, media);
      return undefined;
    }
    const peer = other(side);
    const sender = media.sides[side];
    const wasMuxed = sender.rtcpMux;
    const muxRequired = this.negotiateMuxInOffer(media, side, m.rtcpMux, o.rtcpMux ?? []);
    // The offerer's leg muxes now only where the offer settled rtcp-mux (or it muxed already and
    // the answer may keep it): until the answer decides, its RTCP port stays open. A new leg that
    // muxes from the start gets no RTCP socket, as rtpengine then allocates a single port.
    const legMux = media.mux.answerDecides ? wasMuxed && sender.rtcpMux : sender.rtcpMux;
    const legOptions: LegOptions = { ...this.legOptions(sender, o), rtcpMux: legMux, remoteRtcp: this.remoteRtcp(sender, legMux) };
    if (!media.stream) {
      const peerOptions: LegOptions = {
        localAddress: this.interfaceFor(media.sides[peer].interfaceName).address,
        learning: o.learning ?? this.options.learning,
        rtcpMux: muxRequired,
      };
      const ownOptions = { ...legOptions, localAddress: this.interfaceFor(sender.interfaceName).address };
      media.stream = await this.createStream(side === 'a' ? { a: ownOptions, b: peerOptions } : { a: peerOptions, b: ownOptions });
      this.byStream.set(media.stream.id, { call, media });
      sender.singlePort = legMux;
      media.sides[peer].singlePort = muxRequired;
    } else {
      await media.stream.update({ [side]: legOptions });
    }
    return this.plan(media, peer, media.sides[peer].rtcpMux, o, !muxRequired);
  }

  private async applyAnswer(call: Call, o: SignalOptions, parsed: ParsedSdp): Promise<Buffer> {
    call.signalled();
    const answerer = o.toTag ?? '';
    const party = call.party(answerer);
    Object.assign(party.labels, o.labels ?? {});
    const side = call.sideOf(answerer);
    const plans: Array<MediaPlan | undefined> = [];
    for (const m of parsed.summary.media) plans.push(await this.answerMedia(call, m, side, o));
    if (!call.answered) call.answeredAt = Date.now();
    call.answered = true;
    return this.rewrite(call, other(side), parsed, plans, o);
  }

  private async answerMedia(call: Call, m: MediaSummary, side: LegSide, o: SignalOptions): Promise<MediaPlan | undefined> {
    const media = call.media[m.index];
    if (!media) return undefined;
    if (m.rejected) {
      this.signal(media, side, m, o);
      media.rejected = true;
      await this.releaseMedia(call, media);
      return undefined;
    }
    if (!media.stream) return undefined;
    this.signal(media, side, m, o);
    const offerer = other(side);
    media.sides[side].rtcpMux = m.rtcpMux;
    if (media.mux.answerDecides) media.sides[offerer].rtcpMux = m.rtcpMux;
    const offererMux = media.sides[offerer].rtcpMux;
    await media.stream.update({
      [side]: { ...this.legOptions(media.sides[side], o), rtcpMux: m.rtcpMux },
      [offerer]: { rtcpMux: offererMux, remoteRtcp: this.remoteRtcp(media.sides[offerer], offererMux) },
    });
    return this.plan(media, offerer, offererMux, o);
  }

  /**
   * Records what a party signalled for one m= line, and the relay's send/recv flags of both
   * sides as rtpengine sets them: the sender's from its direction, the receiver's mirrored, and
   * neither towards a party that wrote the zero (hold) address.
   */
  private signal(media: MediaSession, side: LegSide, m: MediaSummary, o: SignalOptions): void {
    const state = media.sides[side];
    const peer = media.sides[other(side)];
    const address = m.zeroAddress ? m.connection?.address : (o.sourceAddress ?? m.connection?.address);
    const rtcpAddress = m.zeroAddress ? address : (o.sourceAddress ?? m.rtcp?.address?.address ?? address);
    state.signalled = address !== undefined ? { address, port: m.port } : null;
    state.signalledRtcp = rtcpAddress !== undefined ? { address: rtcpAddress, port: m.rtcp?.port ?? m.port + 1 } : null;
    state.direction = m.direction;
    state.codecs = m.codecs;
    state.initialized = true;
    state.ice = m.ice;
    const sends = m.direction === 'sendrecv' || m.direction === 'sendonly';
    const receives = m.direction === 'sendrecv' || m.direction === 'recvonly';
    state.recv = sends;
    state.send = receives && !m.zeroAddress;
    peer.send = sends;
    peer.recv = receives && !m.zeroAddress;
  }

  /**
   * rtcp-mux in an offer, as rtpengine decides it (`__rtcp_mux_logic`): the relay offers mux on to
   * the receiver if the offerer did (or `offer`/`require`, not `demux`), and keeps muxing towards a
   * receiver that already muxes. Whether the offerer's side muxes is then either fixed now
   * (`accept`, `reject`, mux not offered on) or left to the answerer's choice. Returns true when
   * the receiver must mux (`require`, or it muxes already), so no RTCP fallback port is offered.
   */
  private negotiateMuxInOffer(media: MediaSession, offerer: LegSide, offered: boolean, flags: readonly RtcpMuxOption[]): boolean {
    const sender = media.sides[offerer];
    const receiver = media.sides[other(offerer)];
    const has = (f: RtcpMuxOption): boolean => flags.includes(f);
    const required = receiver.rtcpMux || has('require');
    let relayOffers = offered;
    if (required || has('offer')) relayOffers = true;
    else if (has('demux')) relayOffers = false;
    let offererMux = offered;
    let answerDecides = false;
    if (offered && relayOffers && !has('accept') && !has('reject')) answerDecides = true;
    if (offered && has('reject')) offererMux = false;
    sender.rtcpMux = offererMux;
    receiver.rtcpMux = relayOffers;
    media.mux = { offererOffered: offered, relayOffered: relayOffers, answerDecides };
    return required;
  }

  private legOptions(state: SideState, o: SignalOptions): LegOptions {
    return {
      remote: sendable(state.signalled),
      remoteRtcp: this.remoteRtcp(state, state.rtcpMux),
      learning: o.learning ?? this.options.learning,
      asymmetric: o.asymmetric ?? false,
      strictSource: o.strictSource ?? false,
      clockRate: sendClockRate(state),
    };
  }

  /** Where the relay sends a side's RTCP: its RTP endpoint with rtcp-mux, else its RTCP endpoint. */
  private remoteRtcp(state: SideState, rtcpMux: boolean): Endpoint | null {
    const rtp = sendable(state.signalled);
    if (!rtp) return null;
    return rtcpMux ? { ...rtp } : (sendable(state.signalledRtcp) ?? { ...rtp });
  }

  /**
   * The relay's side of one m= line in the SDP for `facing`. `fallbackRtcp`: rtcp-mux is only
   * offered, so `a=rtcp` names the RTCP port in case the answerer declines it (RFC 5761 5.1.1).
   */
  private plan(media: MediaSession, facing: LegSide, rtcpMux: boolean, o: SignalOptions, fallbackRtcp = false): MediaPlan {
    const stream = media.stream as Stream;
    const leg = stream[facing];
    const iface = this.interfaceFor(media.sides[facing].interfaceName);
    return {
      address: o.mediaAddress ?? iface.advertised,
      port: leg.localPort,
      rtcpPort: rtcpMux && !fallbackRtcp ? leg.localPort : leg.localPort + 1,
      rtcpMux,
    };
  }

  /** The SDP for `receiver`; with `replace`, its o= and s= lines stay as that party first saw them. */
  private rewrite(call: Call, receiver: LegSide, parsed: ParsedSdp, media: Array<MediaPlan | undefined>, o: SignalOptions): Buffer {
    const sent = call.sent[receiver];
    sent.sessionName ??= parsed.summary.sessionName;
    const version = parsed.summary.origin.sessionVersion;
    if (sent.version === undefined && /^\d{1,20}$/.test(version)) sent.version = BigInt(version);
    const options: RewriteOptions = {
      media,
      replace: o.replace,
      sessionName: sent.sessionName,
      sdpVersion: sent.version,
      ice: o.ice ?? 'default',
      noRtcpAttribute: o.noRtcpAttribute,
      fullRtcpAttribute: o.fullRtcpAttribute,
    };
    try {
      let out = rewriteSdp(parsed, options);
      if (!o.replace?.includes('sdp-version') || sent.version === undefined) return out;
      // the version grows only when what this party is sent changes (rtpengine's sdp_version_check)
      if (sent.last && !out.equals(sent.last)) {
        sent.version += 1n;
        out = rewriteSdp(parsed, { ...options, sdpVersion: sent.version });
      }
      sent.last = out;
      return out;
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

  private async releaseMedia(call: Call, media: MediaSession): Promise<void> {
    if (!media.stream) return;
    this.byStream.delete(media.stream.id);
    if (!media.stream.closed) this.emit('releasing', call, media);
    await media.release();
  }

  private async end(call: Call, reason: EndReason, count = true): Promise<void> {
    if (call.ended) return;
    call.ended = true;
    this.calls.delete(call.callId);
    await Promise.all(call.media.map((m) => this.releaseMedia(call, m)));
    if (count) this.totals.ended[reason]++;
    this.emit('ended', call, reason);
  }

  private onLearned(streamId: number, leg: LegSide, kind: 'rtp' | 'rtcp', endpoint: Endpoint): void {
    const entry = this.byStream.get(streamId);
    if (!entry) return;
    if (kind === 'rtp') entry.media.sides[leg].learned = endpoint;
    else entry.media.sides[leg].learnedRtcp = endpoint;
    this.changed(entry.call);
  }

  private changed(call: Call): void {
    if (call.standby || call.ended) return;
    call.version++;
    this.emit('changed', call);
  }

  /** Adds a call restored from a restoration record (hot standby); replaces any call of that id. */
  async insert(call: Call): Promise<void> {
    const previous = this.calls.get(call.callId);
    if (previous && previous !== call) await previous.exclusive(() => this.remove(previous));
    this.calls.set(call.callId, call);
    for (const media of call.media) if (media?.stream) this.byStream.set(media.stream.id, { call, media });
  }

  /** Removes a call without ending it (the peer relay owns it and reports its end). */
  async forget(callId: string): Promise<void> {
    const call = this.calls.get(callId);
    if (call) await call.exclusive(() => this.remove(call));
  }

  private async remove(call: Call): Promise<void> {
    if (call.ended) return;
    call.ended = true;
    if (this.calls.get(call.callId) === call) this.calls.delete(call.callId);
    await Promise.all(call.media.map((m) => this.releaseMedia(call, m)));
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
      if (call.standby) continue;
      const reason = this.expired(call, now, t);
      if (reason) void call.exclusive(() => this.end(call, reason));
    }
  }

  /**
   * Which timeout, if any, ends the call now. An unanswered call lives as long as either its
   * offerer's media or the offer timeout allows (rtpengine checks the offerer's streams against
   * `timeout` and the unfilled callee streams against `offer-timeout`).
   */
  private expired(call: Call, now: number, t: CallTimeouts): EndReason | null {
    if (call.deleteAtMono !== null && now >= call.deleteAtMono) return 'deleted';
    if (t.finalTimeout > 0 && now - call.createdMono >= t.finalTimeout * 1000) return 'final-timeout';
    const held = call.answered && call.onHold();
    const seconds = !call.answered ? Math.max(t.timeout, t.offerTimeout) : held ? t.silentTimeout : t.timeout;
    const since = (): number => now - Math.max(call.lastMediaMono, call.lastSignalMono);
    if (since() < seconds * 1000) return null;
    this.refreshMedia(call);
    if (since() < seconds * 1000) return null;
    return !call.answered ? 'offer-timeout' : held ? 'silent-timeout' : 'timeout';
  }
}
