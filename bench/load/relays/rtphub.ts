/**
 * rtphub as a relay under test: a fresh Node process running targets/rtphub-target,
 * which drives the engine through the `Relay` facade (src/native/relay.ts) with one
 * worker thread and the chosen backend and coalescing window.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../../../src/native/types';
import { GuardedChild } from '../child';
import { nodeCommandFor, repoRoot, runningFromSource } from '../paths';
import { LineRelay } from './line-relay';
import type { LaunchSettings, RelayUnderTest, RunningRelay } from './relay';

export interface RtphubVariant {
  backend: BackendName;
  /** Coalescing window in us; undefined keeps the engine's default. */
  coalesceUs?: number;
  /** af_xdp: the devices to take media from, UMEM frames and ring size. */
  xdpDevices?: string[];
  xdpFrames?: number;
  xdpRingSize?: number;
}

export class RtphubRelay implements RelayUnderTest {
  readonly family = 'rtphub';
  readonly name: string;

  constructor(
    private readonly variant: RtphubVariant,
    private readonly launch: LaunchSettings,
  ) {
    const coalesce = variant.coalesceUs === undefined ? '' : ` coalesce=${variant.coalesceUs}us`;
    this.name = `rtphub ${variant.backend}${coalesce}`;
  }

  unavailableReason(): string | null {
    const root = repoRoot();
    const addon = join(root, 'build', 'Release', 'rtphub.node');
    if (!existsSync(addon)) return `${addon} not built (npm run build:native)`;
    const facade = runningFromSource() ? join(root, 'src', 'native', 'relay.ts') : join(root, 'dist', 'src', 'native', 'relay.js');
    if (!existsSync(facade)) return `${facade} missing (the Relay facade is not written or not compiled yet)`;
    return null;
  }

  start(): Promise<RunningRelay> {
    const { command, args } = nodeCommandFor(join('targets', 'rtphub-target'));
    const child = GuardedChild.spawn({
      cpu: this.launch.relayCpu,
      nice: this.launch.nice,
      maxSeconds: this.launch.maxSeconds,
      guard: this.launch.guard,
      command,
      args: [...args, ...this.targetArgs()],
      label: this.name,
    });
    return LineRelay.attach(child, true, true);
  }

  private targetArgs(): string[] {
    const args = ['--backend', this.variant.backend, '--port-min', String(this.launch.portMin), '--port-max', String(this.launch.portMax)];
    if (this.variant.coalesceUs !== undefined) args.push('--coalesce-us', String(this.variant.coalesceUs));
    for (const dev of this.variant.xdpDevices ?? []) args.push('--xdp-dev', dev);
    if (this.variant.xdpFrames !== undefined) args.push('--xdp-frames', String(this.variant.xdpFrames));
    if (this.variant.xdpRingSize !== undefined) args.push('--xdp-ring-size', String(this.variant.xdpRingSize));
    if (this.launch.mediaAddress !== undefined) args.push('--interface', this.launch.mediaAddress);
    if (this.launch.callerAddress !== undefined) args.push('--caller-addr', this.launch.callerAddress);
    if (this.launch.calleeAddress !== undefined) args.push('--callee-addr', this.launch.calleeAddress);
    return args;
  }
}
