/**
 * The shared (virtual) address of an active/standby pair (seed 003: primary and backup share one
 * logical IP), claimed by the relay that becomes active and announced (gratuitous ARP /
 * unsolicited NA). Media sockets are bound to it with IP_FREEBIND before either relay holds it,
 * so a takeover never rebinds a socket.
 *
 * Two ways to hold it:
 * - `held` (IPv4, the default): both relays keep the address on `lo` (/32) all the time, and the
 *   interface's `arp_ignore` decides who answers for it: 1 on the standby (it answers ARP only for
 *   the interface's own addresses, so never for the shared one), 0 on the active. Claiming is a
 *   write to /proc/sys and the announcement, a few microseconds with no other process involved:
 *   an address added at takeover cost 20 to 120 ms on a loaded machine (the `ip` process and the
 *   kernel's route updates). The interface needs an address of its own in the shared address's
 *   subnet (its route to the endpoints), and `net.ipv4.conf.all.arp_ignore` must be 0 (the kernel
 *   takes the larger of `all` and the interface's). The interface's `arp_announce` is 2 on both:
 *   ARP requests name its own address, never the shared one, so a relay that forwards a stray
 *   packet while standby (its streams are armed: HaNode) cannot pull the callers to itself.
 * - `added` (IPv6, or where the above is not possible): the address is added to the interface
 *   when claimed (`ip addr replace`, `nodad` for IPv6 so it is usable at once) and removed when
 *   released. Spawning a process from a large, busy Node process costs tens of milliseconds, so
 *   one `ip -batch` process is kept running and a claim or a release is a line written to it.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { InvalidArgumentError, SystemError } from '../errors';
import { announceAddress } from '../native/announce';
import type { SharedAddressClaim } from './keepalive';

export type SharedAddressMethod = 'held' | 'added';

export interface SharedAddressOptions {
  /** `IP/PREFIX` */
  cidr: string;
  device: string;
  /** `held` falls back to `added` where it cannot work (IPv6, no write access to /proc/sys). */
  method?: SharedAddressMethod;
}

const IP_TIMEOUT_MS = 5000;
/**
 * Announcements repeated after a claim (ms after it), as keepalived repeats its gratuitous ARPs:
 * a neighbour that missed the first ones, or that a stale answer turned elsewhere since (a dead
 * peer's kernel still answering for the address, the loser of a split brain), comes back.
 */
const REANNOUNCE_MS = [100, 500, 1000, 2000, 5000];
/** A command that always fails: its failure report says every line before it was carried out. */
const SENTINEL = 'address show dev 0rtphub-sentinel';

/**
 * `ip -force -batch -` kept running. It reports each failed line on stderr as "Command failed
 * -:LINE" after the command's own message; each command is followed by SENTINEL, whose failure
 * marks the command done.
 */
class IpBatch {
  private child: ChildProcess | null = null;
  private line = 0;
  private text = '';
  private failures = new Map<number, string>();
  private readonly waiting = new Map<number, { command: number; done: (error: Error | null) => void }>();

  run(args: string[]): Promise<void> {
    const child = this.child ?? this.start();
    const command = ++this.line;
    const sentinel = ++this.line;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(sentinel);
        this.stop();
        reject(new SystemError(`ip ${args.join(' ')}: no answer within ${IP_TIMEOUT_MS} ms`));
      }, IP_TIMEOUT_MS);
      this.waiting.set(sentinel, {
        command,
        done: (error) => {
          clearTimeout(timer);
          if (error) reject(new SystemError(`ip ${args.join(' ')}: ${error.message}`));
          else resolve();
        },
      });
      child.stdin!.write(`${args.join(' ')}\n${SENTINEL}\n`);
    });
  }

  stop(): void {
    this.child?.stdin?.end();
    this.child = null;
    for (const w of this.waiting.values()) w.done(new Error('ip exited'));
    this.waiting.clear();
  }

  private start(): ChildProcess {
    const child = spawn('ip', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    this.line = 0;
    this.text = '';
    this.failures = new Map();
    child.stdin!.on('error', () => undefined);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => this.read(chunk));
    child.once('error', () => undefined);
    child.once('exit', () => {
      if (this.child === child) this.stop();
    });
    return child;
  }

  private read(chunk: string): void {
    this.text += chunk;
    let end: number;
    while ((end = this.text.indexOf('\n')) >= 0) {
      const line = this.text.slice(0, end);
      this.text = this.text.slice(end + 1);
      const failed = /^Command failed -:(\d+)$/.exec(line);
      if (!failed) {
        this.failures.set(0, `${this.failures.get(0) ?? ''}${line} `);
        continue;
      }
      const number = Number(failed[1]);
      const waiter = this.waiting.get(number);
      if (waiter) {
        this.waiting.delete(number);
        const message = this.failures.get(waiter.command);
        this.failures.delete(waiter.command);
        this.failures.delete(0);
        waiter.done(message === undefined ? null : new Error(message.trim()));
      } else {
        // A command's own failure: its message is what came since the last report.
        this.failures.set(number, this.failures.get(0) ?? 'failed');
        this.failures.delete(0);
      }
    }
  }
}

/** One IPv4 sysctl of an interface (`net.ipv4.conf.DEV.NAME`), read and written through /proc/sys. */
class InterfaceSysctl {
  private readonly path: string;

  constructor(device: string, name: string) {
    this.path = `/proc/sys/net/ipv4/conf/${device}/${name}`;
  }

  read(): number {
    return Number(readFileSync(this.path, 'utf8').trim());
  }

  write(value: number): void {
    writeFileSync(this.path, `${value}\n`);
  }
}

export class SharedAddress {
  readonly address: string;
  private readonly prefix: number;
  private held = false;
  private readonly ip = new IpBatch();
  /** `held` only: the interface's arp_ignore (the value to restore on close, the standby's value). */
  private arpIgnore: { sysctl: InterfaceSysctl; original: number; standby: number } | null = null;
  /** `held` only: the interface's arp_announce, set to 2 while running (the value to restore on close). */
  private arpAnnounce: { sysctl: InterfaceSysctl; original: number } | null = null;
  /** How the address is held, once `prepare()` decided (`held` may fall back to `added`). */
  method: SharedAddressMethod;
  /** Why `held` fell back to `added`, if it did. */
  fallback: string | null = null;
  /** When the address was last announced (Unix ms). */
  announcedAt = 0;
  private readonly repeats: NodeJS.Timeout[] = [];

  constructor(private readonly options: SharedAddressOptions) {
    const [address, prefix] = options.cidr.split('/');
    const bits = Number(prefix ?? (isIPv6(address) ? 128 : 32));
    if (!address || !Number.isInteger(bits) || bits < 1 || bits > (isIPv6(address) ? 128 : 32)) {
      throw new InvalidArgumentError(`--ha-vip must be IP/PREFIX, not '${options.cidr}'`);
    }
    if (!/^[\w.-]{1,15}$/.test(options.device)) throw new InvalidArgumentError(`--ha-vip-dev must be an interface name, not '${options.device}'`);
    this.address = address;
    this.prefix = bits;
    this.method = options.method ?? 'held';
  }

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Puts the address where it waits (`held`: on `lo`, not answered) and makes sure this relay does
   * not hold it (a crash may have left it claimed). Call once, before anything is bound to it.
   */
  async prepare(): Promise<void> {
    if (this.method === 'held') {
      const reason = await this.hold().catch((error: Error) => error.message);
      if (reason) {
        this.fallback = reason;
        this.method = 'added';
      }
    }
    await this.release();
  }

  /** `held`: the address on `lo`, the interface answering ARP for its own addresses only. Null, or why not. */
  private async hold(): Promise<string | null> {
    if (isIPv6(this.address)) return 'IPv6 neighbour discovery answers only for addresses on the interface itself';
    if (new InterfaceSysctl('all', 'arp_ignore').read() !== 0) return 'net.ipv4.conf.all.arp_ignore is not 0';
    const sysctl = new InterfaceSysctl(this.options.device, 'arp_ignore');
    const original = sysctl.read();
    const standby = original === 0 ? 1 : original;
    const announce = new InterfaceSysctl(this.options.device, 'arp_announce');
    const announceOriginal = announce.read();
    // Not answering before the address is on `lo`; ARP requests name the interface's own address.
    sysctl.write(standby);
    announce.write(2);
    this.arpAnnounce = { sysctl: announce, original: announceOriginal };
    // An address left on the interface itself (the `added` way, a crash) would answer ARP there.
    await this.ip.run(['address', 'del', `${this.address}/${this.prefix}`, 'dev', this.options.device]).catch(() => undefined);
    try {
      await this.ip.run(['address', 'replace', `${this.address}/32`, 'dev', 'lo']);
    } catch (error) {
      sysctl.write(original);
      announce.write(announceOriginal);
      this.arpAnnounce = null;
      throw error;
    }
    this.arpIgnore = { sysctl, original, standby };
    return null;
  }

  /**
   * What the keep-alive thread needs to claim the address itself when it loses an active peer: a
   * write to /proc/sys and an announcement, no state of this object (`held` only; null otherwise).
   */
  get keepAliveClaim(): SharedAddressClaim | null {
    return this.arpIgnore ? { device: this.options.device, address: this.address } : null;
  }

  /** The keep-alive thread claimed and announced the address at `at` (Unix ms). */
  claimed(at: number): void {
    if (!this.arpIgnore) return;
    this.held = true;
    this.announcedAt = at;
    this.repeatAnnouncements();
  }

  private repeatAnnouncements(): void {
    this.cancelRepeats();
    for (const ms of REANNOUNCE_MS) this.repeats.push(setTimeout(() => this.announce(), ms).unref());
  }

  private cancelRepeats(): void {
    for (const timer of this.repeats.splice(0)) clearTimeout(timer);
  }

  /**
   * Claims the address (unless held already) and announces it (again). Resolves with the
   * announcement's error, if any (a link that is down): the address is held all the same, and
   * announced again later. The `held` way does its work before returning (the promise only
   * carries the result).
   */
  async claim(): Promise<Error | null> {
    const first = !this.held;
    if (first && this.arpIgnore) {
      this.arpIgnore.sysctl.write(0);
    } else if (first) {
      const args = ['address', 'replace', `${this.address}/${this.prefix}`, 'dev', this.options.device];
      if (isIPv6(this.address)) args.push('nodad');
      await this.ip.run(args);
    }
    this.held = true;
    const failure = this.announce();
    if (first) {
      this.announcedAt = Date.now();
      this.repeatAnnouncements();
    }
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

  /** Stops holding the address; releasing an address not held is not an error. */
  async release(): Promise<void> {
    this.held = false;
    this.cancelRepeats();
    if (this.arpIgnore) {
      this.arpIgnore.sysctl.write(this.arpIgnore.standby);
      return;
    }
    await this.ip.run(['address', 'del', `${this.address}/${this.prefix}`, 'dev', this.options.device]).catch(() => undefined);
  }

  /**
   * Puts back what `prepare()` changed (the interface's arp_ignore and arp_announce; the address leaves `lo`, where
   * `--ha-vip` put it) and ends the `ip` process.
   */
  async close(): Promise<void> {
    this.cancelRepeats();
    if (this.arpIgnore) {
      this.held = false;
      try {
        this.arpIgnore.sysctl.write(this.arpIgnore.original);
        this.arpAnnounce?.sysctl.write(this.arpAnnounce.original);
      } catch {
        // The interface is gone: nothing to put back.
      }
      await this.ip.run(['address', 'del', `${this.address}/32`, 'dev', 'lo']).catch(() => undefined);
    }
    this.ip.stop();
  }
}
