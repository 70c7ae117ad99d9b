/**
 * Keeps the peer's copy of every call this relay owns current. Each change of an owned call
 * (offer, answer, endpoint learned) publishes a new record; an ended call publishes its delete.
 * Records carry the streams' counters, which change without any signalling, so a call whose
 * record is older than REFRESH_MS and whose counters moved is published again (the same version,
 * a newer write time), at most REFRESH_PER_SECOND a second: after a takeover a call's counters go
 * on from at most REFRESH_MS before the failure (further behind beyond REFRESH_MS x
 * REFRESH_PER_SECOND calls), never from zero. A delete with a delay (the call ends later) is
 * published at the next refresh tick too, so the standby ends the call on time if it takes over.
 *
 * Exports are asynchronous (the data plane's workers export the streams): one export per call at
 * a time (at most EXPORT_CONCURRENCY in all), changes that come while one runs are folded into
 * one more export once it ends, and a record that completes after its call ended or was handed
 * over is dropped, or it would bring the call back on the peer.
 */
import type { Call } from '../calls/call';
import type { CallRegistry } from '../calls/call-registry';
import type { CallBridge } from './call-bridge';
import type { HaNode } from './ha-node';

export const REFRESH_MS = 10_000;
export const REFRESH_PER_SECOND = 100;
/**
 * Exports in flight: a burst of changes (thousands of endpoints learned at once) is spread over
 * many turns of the event loop instead of one long one that would hold keep-alive state pushes,
 * acknowledgements and ng requests back.
 */
const EXPORT_CONCURRENCY = 64;

export class RecordPublisher {
  /** Calls being exported; true when another change came meanwhile. */
  private readonly exporting = new Map<Call, boolean>();
  /** Calls waiting for an export slot, in order of their first change. */
  private readonly queued = new Set<Call>();
  private running = 0;
  private readonly published = new WeakMap<Call, { at: number; packets: number; deleting: boolean }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly calls: CallRegistry,
    private readonly bridge: CallBridge,
    private readonly node: HaNode,
    private readonly onError: (error: Error, callId: string) => void,
  ) {
    calls.on('changed', (call) => this.publish(call));
    calls.on('ended', (call) => {
      if (!call.standby && node.role === 'active') node.unpublish(call.callId, call.version);
    });
    this.timer = setInterval(() => this.refresh(), 1000);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Publishes the call's current record (after a change, or when this relay took it over). */
  publish(call: Call): void {
    if (this.node.role !== 'active' || call.standby || call.ended) return;
    if (this.exporting.has(call)) {
      this.exporting.set(call, true);
      return;
    }
    if (this.running >= EXPORT_CONCURRENCY) {
      this.queued.add(call);
      return;
    }
    this.running++;
    this.exporting.set(call, false);
    const packets = this.packets(call);
    const deleting = call.deleteAtMono !== null;
    this.bridge
      .record(call, '', this.node.epoch)
      .then((record) => {
        if (call.ended || call.standby || this.node.role !== 'active') return;
        this.node.publish(record);
        this.published.set(call, { at: Date.now(), packets, deleting });
      })
      .catch((error: Error) => this.onError(error, call.callId))
      .finally(() => {
        this.running--;
        const again = this.exporting.get(call);
        this.exporting.delete(call);
        if (again) this.publish(call);
        this.next();
      });
  }

  /** Starts the exports that waited for a free slot, oldest first. */
  private next(): void {
    for (const call of this.queued) {
      if (this.running >= EXPORT_CONCURRENCY) return;
      this.queued.delete(call);
      this.publish(call);
    }
  }

  /** Publishes again the calls whose record is old and whose counters moved, oldest calls first. */
  private refresh(): void {
    if (this.node.role !== 'active') return;
    const now = Date.now();
    let budget = REFRESH_PER_SECOND;
    for (const call of this.calls.calls.values()) {
      if (budget === 0) return;
      if (call.standby || call.ended) continue;
      // A call without a record from here was adopted at a takeover: its record is the peer's.
      const last = this.published.get(call);
      // A delete with a delay changes no version (the call model says nothing): its record goes
      // out with the next refresh tick, so a standby that takes over ends the call on time.
      const deleteChanged = last !== undefined && last.deleting !== (call.deleteAtMono !== null);
      if (last && !deleteChanged && (now - last.at < REFRESH_MS || this.packets(call) === last.packets)) continue;
      budget--;
      this.publish(call);
    }
  }

  /** Packets the call's streams received, all legs. */
  private packets(call: Call): number {
    let total = 0;
    for (const media of call.media) {
      if (!media?.stream || media.stream.closed) continue;
      const c = media.stream.counters();
      total += c.a.rtp_packets_in + c.a.rtcp_packets_in + c.b.rtp_packets_in + c.b.rtcp_packets_in;
    }
    return total;
  }
}
