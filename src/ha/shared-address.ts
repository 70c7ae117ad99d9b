/**
 * The shared (virtual) address of an active/standby pair (seed 003: primary and backup share one
 * logical IP). Claiming it adds it to the interface (`ip addr add`, with `nodad` for IPv6 so it is
 * usable at once) and announces it (gratuitous ARP / unsolicited NA); releasing it removes it.
 * Media sockets are bound to it with IP_FREEBIND before either relay holds it, so a takeover
 * never rebinds a socket.
 */
import { execFile } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { promisify } from 'node:util';
import { InvalidArgumentError, SystemError } from '../errors';
import { announceAddress } from '../native/announce';

const run = promisify(execFile);

export interface SharedAddressOptions {
  /** `IP/PREFIX` */
  cidr: string;
  device: string;
}

export class SharedAddress {
  readonly address: string;
  private readonly prefix: number;
  private held = false;

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

  /** Adds the address (if missing) and announces it. */
  async claim(): Promise<void> {
    const args = ['addr', 'replace', `${this.address}/${this.prefix}`, 'dev', this.options.device];
    if (isIPv6(this.address)) args.push('nodad');
    await this.ip(args);
    this.held = true;
    announceAddress(this.options.device, this.address, 3);
  }

  async release(): Promise<void> {
    this.held = false;
    await this.ip(['addr', 'del', `${this.address}/${this.prefix}`, 'dev', this.options.device]).catch(() => undefined);
  }

  private async ip(args: string[]): Promise<void> {
    try {
      await run('ip', args, { timeout: 5000 });
    } catch (error) {
      throw new SystemError(`ip ${args.join(' ')}: ${(error as Error).message.trim()}`);
    }
  }
}
