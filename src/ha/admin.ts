/**
 * Operator commands for high availability, carried by the ng `cli` command (as rtpengine's CLI
 * rides on its control socket): `ha status`, `ha switchover`, and `ha active` / `ha standby`
 * for operators whose shared address is managed by keepalived (its notify script calls
 * `rtphub ctl active|standby`).
 */
import { NgRequestError } from '../ng/errors';
import type { NgReplyDict } from '../ng/message';
import type { HaNode } from './ha-node';

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function haStatus(node: HaNode): NgReplyDict {
  const lag = [...node.sender.stats.lagMs].sort((x, y) => x - y);
  const peer = node.keepalive.peer;
  return {
    result: 'ok',
    role: node.role,
    epoch: node.epoch,
    peer: peer ? { node: peer.node, role: peer.role, epoch: peer.epoch, alive: node.keepalive.peerAlive ? 1 : 0, sessions: peer.sessions } : {},
    replication: {
      connected: node.sender.stats.connected ? 1 : 0,
      'full syncs': node.sender.stats.fullSyncs,
      overflows: node.sender.stats.overflows,
      'lag p50 ms': percentile(lag, 50),
      'lag p99 ms': percentile(lag, 99),
      received: node.receiver.stats.upserts,
      rejected: node.receiver.stats.rejected + node.stats.rejectedRecords,
    },
    takeovers: node.stats.takeovers,
    switchovers: node.stats.switchovers,
    'split brains': node.stats.splitBrains,
    'dropped calls': node.stats.droppedCalls,
    'last takeover ms': node.stats.lastTakeoverMs,
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
