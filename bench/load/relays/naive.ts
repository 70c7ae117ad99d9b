/**
 * The naive reference relay (bench/load/native/naive-relay.c): one socket per leg, one
 * epoll loop, recvmmsg then sendmmsg per ready socket. "What a straightforward
 * implementation achieves", for scale.
 */
import { GuardedChild } from '../child';
import { LineRelay } from './line-relay';
import type { LaunchSettings, RelayUnderTest, RunningRelay } from './relay';

export class NaiveRelay implements RelayUnderTest {
  readonly name = 'naive epoll (C)';
  readonly family = 'naive';

  constructor(
    private readonly binary: string,
    private readonly launch: LaunchSettings,
  ) {}

  unavailableReason(): string | null {
    return null;
  }

  start(): Promise<RunningRelay> {
    const child = GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: this.launch.maxSeconds,
      guard: this.launch.guard,
      command: this.binary,
      args: ['--max-seconds', String(this.launch.maxSeconds)],
      label: this.name,
    });
    // the naive relay reads one batch of calls, then forwards
    return LineRelay.attach(child, false, false);
  }
}
