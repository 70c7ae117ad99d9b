/**
 * Counters of the SIP front, declared once: the front increments them, the Prometheus
 * collector (metrics.ts) and `rtphub ctl proxies` read them.
 */

export interface SipCounters {
  /** Datagrams or stream messages received. */
  received: number;
  requests: Record<string, number>;
  responses: number;
  /** Messages that failed to parse, by the status they earned (400, 413, 505…). */
  parseErrors: Record<string, number>;
  /** Messages dropped: unparseable and unanswerable, or responses no transaction knows. */
  dropped: number;
  /** Responses sent by the front, by status class (1xx…6xx). */
  sent: Record<string, number>;
  retransmissions: number;
  loops: number;
  tooManyHops: number;
  /** Initial INVITEs, and those that got a 2xx / a final error / no proxy / were cancelled. */
  invites: number;
  answered: number;
  rejected: number;
  noProxy: number;
  cancelled: number;
  /** Offers or answers the call model refused. */
  mediaErrors: number;
  /** Requests sent to an alternatePath backup after their next hop failed. */
  alternateRetries: number;
  /** Mid-dialog requests taken over for a failed primary (this front as its backup). */
  takeovers: number;
  /** Internal errors caught at the front's edge (a bug, never a crash). */
  internalErrors: number;
}

export function createSipCounters(): SipCounters {
  return {
    received: 0,
    requests: {},
    responses: 0,
    parseErrors: {},
    dropped: 0,
    sent: {},
    retransmissions: 0,
    loops: 0,
    tooManyHops: 0,
    invites: 0,
    answered: 0,
    rejected: 0,
    noProxy: 0,
    cancelled: 0,
    mediaErrors: 0,
    alternateRetries: 0,
    takeovers: 0,
    internalErrors: 0,
  };
}

export function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}
