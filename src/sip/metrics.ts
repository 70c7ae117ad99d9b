/**
 * Prometheus metrics of the SIP front and its proxy table, read from their counters at scrape
 * time: per proxy its state, attempts, answers, timeouts and transport errors; for the front
 * the messages it received and sent, parse errors by status, and call outcomes.
 */
import client from 'prom-client';
import type { Metrics } from '../metrics/registry';
import type { SipFront } from './front';

export function watchSipFront(metrics: Metrics, front: SipFront): void {
  const registers = [metrics.registry];
  const proxyUp = new client.Gauge({ name: 'rtphub_sip_proxy_up', help: 'Proxy in service (1) or failed (0)', labelNames: ['proxy', 'priority'], registers });
  const proxyEvents = new client.Gauge({
    name: 'rtphub_sip_proxy_total',
    help: 'Per proxy: attempts, successes, timeouts, transport_errors, probes, probe_failures',
    labelNames: ['proxy', 'event'],
    registers,
  });
  const level = new client.Gauge({ name: 'rtphub_sip_proxy_active_level', help: 'Priority of the level new calls go to (0: none in service)', registers });
  const messages = new client.Gauge({ name: 'rtphub_sip_messages_total', help: 'SIP messages by kind', labelNames: ['kind'], registers });
  const requests = new client.Gauge({ name: 'rtphub_sip_requests_total', help: 'SIP requests received, by method', labelNames: ['method'], registers });
  const sent = new client.Gauge({ name: 'rtphub_sip_responses_sent_total', help: 'Responses sent or forwarded, by class', labelNames: ['class'], registers });
  const parse = new client.Gauge({ name: 'rtphub_sip_parse_errors_total', help: 'Malformed messages, by the status they earned', labelNames: ['status'], registers });
  const calls = new client.Gauge({ name: 'rtphub_sip_calls_total', help: 'Initial INVITEs by outcome', labelNames: ['outcome'], registers });
  const transactions = new client.Gauge({ name: 'rtphub_sip_transactions', help: 'Live transactions', labelNames: ['side'], registers });
  metrics.addCollector(() => {
    const c = front.counters;
    for (const p of front.table?.proxies ?? []) {
      proxyUp.set({ proxy: p.uri, priority: String(p.spec.priority) }, p.state === 'up' ? 1 : 0);
      const k = p.counters;
      proxyEvents.set({ proxy: p.uri, event: 'attempts' }, k.attempts);
      proxyEvents.set({ proxy: p.uri, event: 'successes' }, k.successes);
      proxyEvents.set({ proxy: p.uri, event: 'timeouts' }, k.timeouts);
      proxyEvents.set({ proxy: p.uri, event: 'transport_errors' }, k.transportErrors);
      proxyEvents.set({ proxy: p.uri, event: 'probes' }, k.probes);
      proxyEvents.set({ proxy: p.uri, event: 'probe_failures' }, k.probeFailures);
    }
    level.set(front.table?.activeLevel() ?? 0);
    messages.set({ kind: 'received' }, c.received);
    messages.set({ kind: 'responses' }, c.responses);
    messages.set({ kind: 'retransmissions' }, c.retransmissions);
    messages.set({ kind: 'dropped' }, c.dropped);
    messages.set({ kind: 'loops' }, c.loops);
    messages.set({ kind: 'too_many_hops' }, c.tooManyHops);
    messages.set({ kind: 'alternate_retries' }, c.alternateRetries);
    messages.set({ kind: 'takeovers' }, c.takeovers);
    messages.set({ kind: 'internal_errors' }, c.internalErrors);
    for (const [method, n] of Object.entries(c.requests)) requests.set({ method }, n);
    for (const [cls, n] of Object.entries(c.sent)) sent.set({ class: cls }, n);
    for (const [status, n] of Object.entries(c.parseErrors)) parse.set({ status }, n);
    calls.set({ outcome: 'invites' }, c.invites);
    calls.set({ outcome: 'answered' }, c.answered);
    calls.set({ outcome: 'rejected' }, c.rejected);
    calls.set({ outcome: 'no_proxy' }, c.noProxy);
    calls.set({ outcome: 'cancelled' }, c.cancelled);
    calls.set({ outcome: 'media_errors' }, c.mediaErrors);
    transactions.set({ side: 'server' }, front.layer.serverCount);
    transactions.set({ side: 'client' }, front.layer.clientCount);
  });
}
