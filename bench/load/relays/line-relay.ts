/**
 * A relay process driven by the benchmark's line protocol (the naive C relay and the
 * rtphub target speak it): the child prints `ready`; the harness writes one line
 * "callerPort calleePort" per call and `end`; the child answers {"ports":[[a,b],…]} for every call it holds (earlier batches first).
 * `stats` asks for {"stats":{…}} (rtphub only); `quit` (or EOF) ends the child.
 */
import { GuardedChild, portPairs } from '../child';
import type { CallEndpoints, RelayPorts, RunningRelay } from './relay';

const READY_TIMEOUT_MS = 20_000;
const STATS_TIMEOUT_MS = 5_000;

export class LineRelay implements RunningRelay {
  /** Calls created by earlier batches: the child lists them first in every answer. */
  private created = 0;

  private constructor(
    private readonly child: GuardedChild,
    private readonly hasStats: boolean,
    readonly batches: boolean,
  ) {}

  /** Waits for the child's `ready` line; the child is stopped if it never comes. */
  static async attach(child: GuardedChild, hasStats: boolean, batches: boolean): Promise<LineRelay> {
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while ((await child.readLine(Math.max(1, deadline - Date.now()), 'ready')).trim() !== 'ready');
      return new LineRelay(child, hasStats, batches);
    } catch (err) {
      await child.stop(null);
      throw err;
    }
  }

  get pid(): number {
    return this.child.pid;
  }

  async createCalls(calls: CallEndpoints[]): Promise<RelayPorts[]> {
    const lines = calls.map((c) => `${c.callerPort} ${c.calleePort}\n`).join('');
    this.child.write(`${lines}end\n`);
    const reply = await this.child.readJson(10_000 + calls.length * 20, 'ports');
    if (typeof reply.error === 'string') throw this.child.failure(reply.error);
    const pairs = portPairs(reply, this.created + calls.length, this.child.label).slice(this.created);
    this.created += calls.length;
    return pairs.map(([a, b]) => ({ a, b }));
  }

  async counters(): Promise<Record<string, number> | null> {
    if (!this.hasStats) return null;
    this.child.write('stats\n');
    const reply = await this.child.readJson(STATS_TIMEOUT_MS, 'stats');
    const stats = reply.stats;
    if (typeof stats !== 'object' || stats === null) return null;
    return Object.fromEntries(Object.entries(stats).filter((e): e is [string, number] => typeof e[1] === 'number'));
  }

  stop(): Promise<void> {
    return this.child.stop('quit\n');
  }
}
