/**
 * The shared (virtual) address of an active/standby pair (seed 003: primary and backup share one
 * logical IP). Claiming it adds it to the interface (`ip addr replace`, with `nodad` for IPv6 so
 * it is usable at once) and announces it (gratuitous ARP / unsolicited NA); releasing it removes
 * it. Media sockets are bound to it with IP_FREEBIND before either relay holds it, so a takeover
 * never rebinds a socket.
 *
 * A takeover waits for the `ip` command, and spawning a process from a large, busy Node process
 * costs tens of milliseconds: so the next claim (or release) is started ahead of time as a shell
 * blocked on its input, which a takeover only has to release into `exec ip …`.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { InvalidArgumentError, SystemError } from '../errors';
import { announceAddress } from '../native/announce';

export interface SharedAddressOptions {
  /** `IP/PREFIX` */
  cidr: string;
  device: string;
}

const IP_TIMEOUT_MS = 5000;
const PREPARE_DELAY_MS = 500;

/** `ip ARGS…` started now, run when `run()` says so; `cancel()` ends it without running. */
class ReadyCommand {
  private readonly child: ChildProcess;
  private readonly exited: Promise<{ code: number | null; stderr: string }>;

  constructor(private readonly args: string[]) {
    // `read` fails at end of input (cancel, or this process gone): the shell then exits without running ip.
    this.child = spawn('sh', ['-c', 'read go && exec ip "$@"', 'sh', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    this.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => resolve({ code: -1, stderr: error.message }));
      this.child.once('exit', (code) => resolve({ code, stderr }));
    });
    this.child.unref();
  }

  async run(): Promise<void> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), IP_TIMEOUT_MS);
    this.child.stdin!.end('\n');
    const { code, stderr } = await this.exited;
    clearTimeout(timer);
    if (code !== 0) throw new SystemError(`ip ${this.args.join(' ')}: ${stderr.trim() || `exit ${code}`}`);
  }

  cancel(): void {
    this.child.stdin!.end();
  }
}

export class SharedAddress {
  readonly address: string;
  private readonly prefix: number;
  private held = false;
  private closed = false;
  private preparing: NodeJS.Timeout | null = null;
  /** When the address was last announced (Unix ms). */
  announcedAt = 0;
  private ready: { claim: ReadyCommand | null; release: ReadyCommand | null } = { claim: null, release: null };

  constructor(private readonly options: SharedAddressOptions) {
    const [address, prefix] = options.cidr.split('/');
    const bits = Number(prefix ?? (isIPv6(address) ? 128 : 32));
    if (!address || !Number.isInteger(bits) || bits < 1 || bits > (isIPv6(address) ? 128 : 32)) {
      throw new InvalidArgumentError(`--ha-vip must be IP/PREFIX, not '${options.cidr}'`);
    }
    this.address = address;
    this.prefix = bits;
  }

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Adds the address (if missing) and announces it. Resolves with the announcement's error, if
   * any (a link that is down): the address is held all the same, and announced again later.
   */
  async claim(): Promise<Error | null> {
    const command = this.ready.claim ?? this.command('claim');
    this.ready.claim = null;
    await command.run();
    this.held = true;
    const failure = this.announce();
    this.announcedAt = Date.now();
    this.prepareLater('release');
    return failure;
  }

  /** Announces the address (while held), e.g. again after the peer that also held it stepped down. */
  announce(): Error | null {
    if (!this.held) return null;
    try {
      announceAddress(this.options.device, this.address, 3);
      return null;
    } catch (error) {
      return error as Error;
    }
  }

  /** Removes the address; removing an address that is not there is not an error. */
  async release(): Promise<void> {
    this.held = false;
    const command = this.ready.release ?? this.command('release');
    this.ready.release = null;
    await command.run().catch(() => undefined);
    this.prepareLater('claim');
  }

  /** Ends the commands kept ready. */
  close(): void {
    this.closed = true;
    if (this.preparing) clearTimeout(this.preparing);
    this.ready.claim?.cancel();
    this.ready.release?.cancel();
    this.ready = { claim: null, release: null };
  }

  /** Spawning blocks this thread for a while: not on the way of a takeover that is under way. */
  private prepareLater(kind: 'claim' | 'release'): void {
    if (this.preparing) clearTimeout(this.preparing);
    this.preparing = setTimeout(() => {
      this.preparing = null;
      if (!this.closed) this.ready[kind] ??= this.command(kind);
    }, PREPARE_DELAY_MS);
    this.preparing.unref();
  }

  private command(kind: 'claim' | 'release'): ReadyCommand {
    const cidr = `${this.address}/${this.prefix}`;
    if (kind === 'release') return new ReadyCommand(['addr', 'del', cidr, 'dev', this.options.device]);
    const args = ['addr', 'replace', cidr, 'dev', this.options.device];
    if (isIPv6(this.address)) args.push('nodad');
    return new ReadyCommand(args);
  }
}
