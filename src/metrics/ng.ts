/**
 * Metrics of the control plane: ng commands (counts, errors, latency histograms) from the ng
 * server's counters, and the call model's sessions and ended calls by reason.
 */
import client from 'prom-client';
import type { CallRegistry } from '../calls/call-registry';
import type { NgServer } from '../ng/server';
import type { Metrics } from './registry';

export function watchNgServer(metrics: Metrics, ng: NgServer, calls: CallRegistry): void {
  const registers = [metrics.registry];
  const sessions = new client.Gauge({ name: 'rtphub_sessions', help: 'Calls currently managed', registers });
  const ended = new client.Gauge({ name: 'rtphub_calls_ended_total', help: 'Calls ended, by reason', labelNames: ['reason'], registers });
  const messages = new client.Gauge({ name: 'rtphub_ng_messages_total', help: 'ng messages, by outcome', labelNames: ['outcome'], registers });
  const errors = new client.Gauge({ name: 'rtphub_ng_errors_total', help: 'ng error replies, by reason', labelNames: ['reason'], registers });
  const commands = new client.Gauge({ name: 'rtphub_ng_commands_total', help: 'ng commands handled, by command', labelNames: ['command'], registers });
  const failed = new client.Gauge({ name: 'rtphub_ng_command_errors_total', help: 'ng commands that failed, by command', labelNames: ['command'], registers });
  const latency = new client.Gauge({
    name: 'rtphub_ng_command_latency_ms_bucket',
    help: 'ng command latency histogram (cumulative count of commands at or under `le` ms)',
    labelNames: ['command', 'le'],
    registers,
  });
  metrics.addCollector(() => {
    const c = ng.counters;
    sessions.set(calls.size);
    for (const [reason, n] of Object.entries(calls.totals.ended)) ended.set({ reason }, n);
    messages.set({ outcome: 'received' }, c.received);
    messages.set({ outcome: 'replied' }, c.replied);
    messages.set({ outcome: 'duplicate' }, c.duplicates);
    messages.set({ outcome: 'dropped' }, c.dropped);
    for (const [reason, n] of Object.entries(c.errors)) errors.set({ reason }, n);
    for (const [command, s] of Object.entries(c.commands)) {
      commands.set({ command }, s.count);
      failed.set({ command }, s.errors);
      let cumulative = 0;
      c.latencyBucketsMs.forEach((le, i) => {
        cumulative += s.latencyBuckets[i] ?? 0;
        latency.set({ command, le: String(le) }, cumulative);
      });
      latency.set({ command, le: '+Inf' }, s.count);
    }
  });
}
