/**
 * The ng commands on top of the call model: translates a normalised NgRequest into the call
 * model's options, runs it, and shapes the reply as rtpengine does (offer/answer: `sdp` only;
 * query/delete: the call's stats; errors with rtpengine's `error-reason` strings, which SIP
 * servers match on). Framing, the reply cache and `ping` are the server's business.
 */
import { CallError } from '../calls/errors';
import type { CallRegistry } from '../calls/call-registry';
import type { IceMode, RtcpMuxOption, SignalOptions } from '../calls/types';
import type { Relay } from '../native/relay';
import { callStats } from './call-stats';
import { NgRequestError } from './errors';
import type { NgReplyDict } from './message';
import type { NgRequest } from './request';
import type { NgHandler } from './server';

export interface DispatcherOptions {
  calls: CallRegistry;
  relay: Relay;
  startedAt?: number;
  /** Operator commands carried by ng `cli` (`cli args`: e.g. `ha switchover`). */
  cli?: (args: string[]) => Promise<NgReplyDict>;
}

const RTCP_MUX_OPTIONS: readonly RtcpMuxOption[] = ['offer', 'require', 'demux', 'accept', 'reject'];

function iceMode(req: NgRequest): IceMode {
  if (req.ice.includes('remove')) return 'remove';
  if (req.ice.includes('force') || req.ice.includes('force-relay')) return 'remove';
  return 'default';
}

function signalOptions(req: NgRequest): SignalOptions {
  const flags = new Set(req.flags);
  const useSource = flags.has('sip-source-address') && !flags.has('trust-address') && req.receivedFrom !== undefined;
  return {
    callId: req.callId ?? '',
    fromTag: req.fromTag ?? '',
    toTag: req.toTag,
    viaBranch: req.viaBranch,
    sdp: req.sdp ?? Buffer.alloc(0),
    learning: req.endpointLearning,
    asymmetric: flags.has('asymmetric') ? true : undefined,
    strictSource: flags.has('strict-source') ? true : undefined,
    sourceAddress: useSource ? req.receivedFrom?.address : undefined,
    mediaAddress: req.mediaAddress,
    direction: req.direction,
    addressFamily: req.addressFamily,
    rtcpMux: req.rtcpMux.filter((m): m is RtcpMuxOption => (RTCP_MUX_OPTIONS as readonly string[]).includes(m)),
    ice: iceMode(req),
    replace: req.replace,
    noRtcpAttribute: flags.has('no-rtcp-attribute'),
    fullRtcpAttribute: flags.has('full-rtcp-attribute'),
  };
}

function asRequestError(error: unknown): never {
  if (error instanceof CallError) throw new NgRequestError(error.reason);
  throw error;
}

export class Dispatcher {
  private readonly calls: CallRegistry;
  private readonly relay: Relay;
  private readonly startedAt: number;

  constructor(private readonly options: DispatcherOptions) {
    this.calls = options.calls;
    this.relay = options.relay;
    this.startedAt = options.startedAt ?? Date.now();
  }

  /** The handler to give to NgServer. */
  readonly handler: NgHandler = (req) => this.dispatch(req);

  async dispatch(req: NgRequest): Promise<NgReplyDict> {
    switch (req.command) {
      case 'offer':
        return this.offer(req);
      case 'answer':
        return this.answer(req);
      case 'delete':
        return this.delete(req);
      case 'query':
        return this.query(req);
      case 'list':
        return this.list(req);
      case 'statistics':
        return this.statistics();
      case 'cli':
        return this.cli(req);
      default:
        throw new NgRequestError('Unrecognized command');
    }
  }

  private async cli(req: NgRequest): Promise<NgReplyDict> {
    const raw = req.options['cli-args'];
    const args = (raw === undefined ? '' : raw.toString()).trim().split(/\s+/).filter(Boolean);
    if (!this.options.cli || args.length === 0) throw new NgRequestError('Unrecognized command');
    return this.options.cli(args);
  }

  private async offer(req: NgRequest): Promise<NgReplyDict> {
    try {
      return { result: 'ok', sdp: await this.calls.offer(signalOptions(req)) };
    } catch (error) {
      // rtpengine's newer reply for a controller that can handle it (Kamailio: `supports load limit`)
      const limited = error instanceof CallError && error.reason === 'Parallel session limit reached';
      if (limited && req.supports.includes('load limit')) return { result: 'load limit', message: error.reason };
      return asRequestError(error);
    }
  }

  private async answer(req: NgRequest): Promise<NgReplyDict> {
    const sdp = await this.calls.answer(signalOptions(req)).catch(asRequestError);
    return { result: 'ok', sdp };
  }

  private async delete(req: NgRequest): Promise<NgReplyDict> {
    const flags = new Set(req.flags);
    const options = {
      callId: req.callId ?? '',
      fromTag: req.fromTag,
      toTag: flags.has('to-tag') ? req.toTag : undefined,
      delay: req.deleteDelay,
    };
    // rtpengine reports the stats of a branch it found by tag; a call-wide delete has none
    const withStats = !flags.has('fast') && !!req.fromTag;
    let stats;
    try {
      stats = await this.calls.delete(options, withStats ? (call) => callStats(call, req.toTag || req.fromTag) : undefined);
    } catch (error) {
      if (!(error instanceof CallError) || flags.has('fatal')) return asRequestError(error);
      return { result: 'ok', warning: error.reason };
    }
    return { ...stats, result: 'ok' };
  }

  private async query(req: NgRequest): Promise<NgReplyDict> {
    const call = this.calls.get(req.callId ?? '');
    if (!call || call.ended) throw new NgRequestError('Unknown call-id');
    return { ...callStats(call, req.toTag || req.fromTag), result: 'ok' };
  }

  private async list(req: NgRequest): Promise<NgReplyDict> {
    const raw = req.options['limit'];
    const limit = raw === undefined ? 32 : typeof raw === 'number' ? raw : Number(raw.toString());
    if (Number.isFinite(limit) && limit < 0) throw new NgRequestError('invalid limit, must be >= 0');
    const ids = [...this.calls.calls.keys()].slice(0, Number.isFinite(limit) ? limit : 32);
    return { calls: ids, result: 'ok' };
  }

  private async statistics(): Promise<NgReplyDict> {
    const stats = this.relay.stats();
    const totals = this.calls.totals;
    const ended = totals.ended;
    return {
      statistics: {
        currentstatistics: {
          sessionsown: this.calls.size,
          sessionsforeign: 0,
          sessionstotal: this.calls.size,
          transcodedmedia: 0,
        },
        totalstatistics: {
          uptime: Math.floor((Date.now() - this.startedAt) / 1000),
          managedsessions: totals.managed,
          rejectedsessions: totals.rejected,
          timeoutsessions: ended.timeout,
          silenttimeoutsessions: ended['silent-timeout'],
          finaltimeoutsessions: ended['final-timeout'],
          offertimeoutsessions: ended['offer-timeout'],
          regularterminatedsessions: ended.deleted,
          forcedterminatedsessions: ended.shutdown,
          relayedpackets: stats.packets_forwarded,
          relayedpacketerrors: stats.packets_dropped,
          relayedbytes: stats.bytes_forwarded,
        },
      },
      result: 'ok',
    };
  }
}
