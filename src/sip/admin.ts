/**
 * `rtphub ctl proxies` (ng `cli` with `cli args: proxies`): the proxy table as operators need
 * it: the level new calls go to, and per proxy its level, state, how long in that state, the
 * last failure and its counters; with the SIP front's own counters.
 */
import { NgRequestError } from '../ng/errors';
import type { NgReplyDict } from '../ng/message';
import type { SipFront } from './front';

export function proxiesStatus(front: SipFront): NgReplyDict {
  const table = front.table;
  const now = Date.now();
  const c = front.counters;
  return {
    result: 'ok',
    'active level': table?.activeLevel() ?? 0,
    proxies: (table?.proxies ?? []).map((p) => ({
      uri: p.uri,
      priority: p.spec.priority,
      state: p.state,
      'state for s': Math.round((now - p.since) / 1000),
      'last failure': p.lastFailure ?? '',
      'probe streak': p.probeStreak,
      attempts: p.counters.attempts,
      successes: p.counters.successes,
      timeouts: p.counters.timeouts,
      'transport errors': p.counters.transportErrors,
      probes: p.counters.probes,
      'probe failures': p.counters.probeFailures,
    })),
    front: {
      invites: c.invites,
      answered: c.answered,
      rejected: c.rejected,
      'no proxy': c.noProxy,
      cancelled: c.cancelled,
      'media errors': c.mediaErrors,
      'alternate retries': c.alternateRetries,
      takeovers: c.takeovers,
      'parse errors': Object.values(c.parseErrors).reduce((a, b) => a + b, 0),
      dropped: c.dropped,
    },
  };
}

/** The `proxies` operator command. */
export function sipCli(front: SipFront | null): (args: string[]) => Promise<NgReplyDict> {
  return async () => {
    if (!front) throw new NgRequestError('the SIP front is not configured (--listen-sip)');
    return proxiesStatus(front);
  };
}
