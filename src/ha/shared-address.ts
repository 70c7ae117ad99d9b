/**
 * The shared (virtual) address of an active/standby pair (seed 003: primary and backup share one
 * logical IP). Claiming it adds it to the interface (`ip addr replace`, with `nodad` for IPv6 so
 * it is usable at once) and announces it (gratuitous ARP / unsolicited NA); releasing it removes
 * it. Media sockets are bound to it with IP_FREEBIND before either relay holds it, so a takeover
 * never rebinds a socket.
 *
 * A takeover waits for the `ip` command, and spawning a process from a large, busy Node process
 * costs tens of milliseconds: so one `ip -batch` process is kept running, and a claim or a
 * release is a line written to it and its answer read back.
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

export class SharedAddress {
  readonly address: string;
  private readonly prefix: number;
  private held = false;
  private readonly ip = new IpBatch();
  /** When the address was last announced (Unix ms). */
  announcedAt = 0;

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
    const args = ['address', 'replace', `${this.address}/${this.prefix}`, 'dev', this.options.device];
    if (isIPv6(this.address)) args.push('nodad');
    await this.ip.run(args);
    this.held = true;
    const failure = this.announce();
    this.announcedAt = Date.now();
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
    await this.ip.run(['address', 'del', `${this.address}/${this.prefix}`, 'dev', this.options.device]).catch(() => undefined);
  }

  /** Ends the `ip` process kept running. */
  close(): void {
    this.ip.stop();
  }
}
