/**
 * Operator commands for high availability, carried by the ng `cli` command (as rtpengine's CLI
 * rides on its control socket): `ha status`, `ha switchover`, and `ha active` / `ha standby`
 * for operators whose shared address is managed by keepalived (its notify script calls
 * `rtphub ctl active|standby`). The status carries a digest of the call table (ids and record
 * versions) so that two relays' tables can be compared without listing every call.
 */
import { NgRequestError } from '../ng/errors';
import type { NgReplyDict } from '../ng/message';
import type { HaNode, ReplicatedCalls } from './ha-node';

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** FNV-1a of a string, 32 bits, from a given offset basis. */
function fnv1a(text: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Counts and a digest of every call held (id and record version), own and standby alike. The
 * digest is a sum of per-call hashes, so it needs no sorting and costs little with many calls.
 */
export function tableSummary(calls: ReplicatedCalls): { own: number; standby: number; digest: string } {
  let standby = 0;
  let high = 0;
  let low = 0;
  const table = calls.table();
  for (const c of table) {
    if (c.standby) standby++;
    const key = `${c.callId}\n${c.version}`;
    high = (high + fnv1a(key, 0x811c9dc5)) >>> 0;
    low = (low + fnv1a(key, 0x050c5d1f)) >>> 0;
  }
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return { own: table.length - standby, standby, digest: hex(high) + hex(low) };
}

export function haStatus(node: HaNode): NgReplyDict {
  const lag = [...node.sender.stats.lagMs].sort((x, y) => x - y);
  const readLag = [...node.receiver.stats.readLagMs].sort((x, y) => x - y);
  const peer = node.keepalive.peer;
  const received = node.receiver.stats;
  const keepalive = node.keepalive.stats;
  return {
    result: 'ok',
    role: node.role,
    epoch: node.epoch,
    peer: peer ? { node: peer.node, role: peer.role, epoch: peer.epoch, alive: node.keepalive.peerAlive ? 1 : 0, sessions: peer.sessions } : {},
    calls: tableSummary(node.calls),
    replication: {
      connected: node.sender.stats.connected ? 1 : 0,
      scheduling: node.io.scheduling,
      'in sync': node.sender.inSyncWithPeer ? 1 : 0,
      connects: node.sender.stats.connects,
      'full syncs': node.sender.stats.fullSyncs,
      overflows: node.sender.stats.overflows,
      'frames sent': node.sender.stats.framesSent,
      'lag p50 ms': percentile(lag, 50),
      'lag p99 ms': percentile(lag, 99),
      'lag samples': lag.length,
      'read lag p50 ms': percentile(readLag, 50),
      'read lag p99 ms': percentile(readLag, 99),
      'read lag samples': readLag.length,
      received: received.upserts,
      deletes: received.deletes,
      'full syncs received': received.fullSyncs,
      rejected: received.rejected,
      'protocol errors': received.protocolErrors,
      'restore failures': node.calls.restoreFailures,
    },
    keepalives: { sent: keepalive.sent, received: keepalive.received, malformed: keepalive.malformed, lost: keepalive.lost, scheduling: node.keepalive.scheduling, 'max send gap ms': Math.round(keepalive.maxSendGapMs), 'max heard gap ms': Math.round(keepalive.maxHeardGapMs), refused: keepalive.refused, 'stalled ms': Math.round(keepalive.stalledMs) },
    takeovers: node.stats.takeovers,
    switchovers: node.stats.switchovers,
    'step downs': node.stats.stepDowns,
    'split brains': node.stats.splitBrains,
    'dropped calls': node.stats.droppedCalls,
    'last takeover ms': node.stats.lastTakeoverMs,
    'last takeover phases ms': node.stats.lastTakeoverPhases,
    'shared address': node.sharedAddressMethod ?? 'none',
    // Bencode carries integers only: microseconds.
    'event loop delay us': {
      p50: Math.round(node.loopDelay.percentile(50) / 1e3),
      p99: Math.round(node.loopDelay.percentile(99) / 1e3),
      max: Math.round(node.loopDelay.max / 1e3),
    },
  };
}

export function haCli(node: HaNode | null): (args: string[]) => Promise<NgReplyDict> {
  return async ([scope, action]) => {
    if (scope !== 'ha') throw new NgRequestError('Unrecognized command');
    if (!node) throw new NgRequestError('high availability is not configured (--ha-peer)');
    try {
      if (action === 'switchover') await node.switchover();
      else if (action === 'active' || action === 'standby') await node.setRole(action, 'operator');
      else if (action !== 'status' && action !== undefined) throw new NgRequestError(`unknown ha command '${action}'`);
    } catch (error) {
      if (error instanceof NgRequestError) throw error;
      throw new NgRequestError((error as Error).message);
    }
    return haStatus(node);
  };
}
