/**
 * A call: one call-id, its parties (tags), its media sessions, and its timers. Side `a` is the
 * party of the first offer; side `b` is whoever answers it. Operations on one call are
 * serialised through `exclusive`, so a re-offer cannot interleave with an answer.
 */
import type { LegSide } from '../native/types';
import { monotonicMs, unixSeconds } from './clock';
import { MediaSession } from './media-session';

export interface Party {
  tag: string;
  viaBranch?: string;
  created: number;
  labels: Record<string, string>;
}

/**
 * What the relay last sent to one side, for the `replace` options that keep that side's view of
 * the session stable (rtpengine keeps these per receiving party): the first s= line it was sent,
 * and the o= version, which grows only when the SDP sent to it changes.
 */
export interface SentSdp {
  sessionName?: string;
  version?: bigint;
  last?: Buffer;
}

export class Call {
  readonly createdMono = monotonicMs();
  /** Grows with every change a standby relay must know about (restoration record version). */
  version = 0;
  /** Held for the peer relay (hot standby): pre-created, not forwarding, no timeouts. */
  standby = false;
  lastSignal = unixSeconds();
  lastSignalMono = monotonicMs();
  /** Last time media was seen on any leg (monotonic ms), refreshed lazily by the sweeper. */
  lastMediaMono = monotonicMs();
  answered = false;
  /** When the call was first answered (Unix ms); carried by the restoration record across a takeover. */
  answeredAt: number | null = null;
  /** When a pending `delete` takes effect (monotonic ms). */
  deleteAtMono: number | null = null;
  ended = false;
  readonly parties = new Map<string, Party>();
  readonly sides: Record<LegSide, string | null> = { a: null, b: null };
  readonly media: MediaSession[] = [];
  readonly sent: Record<LegSide, SentSdp> = { a: {}, b: {} };
  /** The via-branch of the first offer, kept for the callee until its tag is known. */
  untaggedViaBranch?: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly callId: string,
    readonly created = unixSeconds(),
  ) {}

  /** Runs `op` after every operation already queued on this call. */
  exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  party(tag: string): Party {
    let p = this.parties.get(tag);
    if (!p) {
      p = { tag, created: unixSeconds(), labels: {} };
      this.parties.set(tag, p);
    }
    return p;
  }

  /**
   * Keeps an offer's via-branch with the party the offer goes to, as rtpengine does: the branch
   * names the callee's fork, not the caller. An untagged callee gets it once its tag is known.
   */
  branchTo(side: LegSide, viaBranch?: string): void {
    if (!viaBranch) return;
    const tag = this.sides[side];
    if (tag === null) {
      this.untaggedViaBranch ??= viaBranch;
      return;
    }
    this.party(tag).viaBranch ??= viaBranch;
  }

  /** The side of a tag, assigning a free side to a new tag. */
  sideOf(tag: string): LegSide {
    if (this.sides.a === tag) return 'a';
    if (this.sides.b === tag) return 'b';
    if (this.sides.a === null) {
      this.sides.a = tag;
      return 'a';
    }
    if (this.sides.b === null) {
      this.sides.b = tag;
      this.branchTo('b', this.untaggedViaBranch);
      this.untaggedViaBranch = undefined;
      return 'b';
    }
    // A new answerer (a forked branch answering): it takes over side b.
    this.parties.delete(this.sides.b);
    this.sides.b = tag;
    return 'b';
  }

  signalled(): void {
    this.lastSignal = unixSeconds();
    this.lastSignalMono = monotonicMs();
    this.deleteAtMono = null;
  }

  /** True while every live stream is held or inactive (silent timeout applies). */
  onHold(): boolean {
    const live = this.media.filter((m) => m.stream);
    return live.length > 0 && live.every((m) => m.sides.a.direction !== 'sendrecv' || m.sides.b.direction !== 'sendrecv');
  }
}
