/**
 * Hosts for failover tests and benchmarks: one network namespace per host, each joined by a veth
 * pair to a bridge that lives in a namespace of its own (never in the root namespace), so the
 * hosts talk only to each other. Names carry a per-run prefix (`rh<pid>n<k>`) so concurrent runs
 * never collide; `destroy()` kills every process started here (by PID) and deletes every
 * namespace created here. Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking range).
 *
 * Commands run inside a host through `ip netns exec`, wrapped in exec-guard (when given) so the
 * kernel kills them if this process dies, and in `nice` (when asked); each of these execs the
 * next, so the PID of the spawned child is the PID of the command itself.
 */
import { ChildProcess, execFile, spawn, SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface HostSpec {
  name: string;
  /** IP/PREFIX on the host's eth0. */
  address: string;
}

let topologies = 0;

export async function ip(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export class Netns {
  readonly prefix: string;
  readonly hosts = new Map<string, HostSpec>();
  private readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];

  private constructor(
    private readonly guard: string | null,
    private readonly nice: number,
  ) {
    this.prefix = `rh${process.pid}n${++topologies}`;
  }

  /**
   * Builds the bridge and one host per spec (loopback up, eth0 up with its address). `guard`:
   * exec-guard binary to run commands under; `nice`: their scheduling priority (0: unchanged).
   */
  static async create(hosts: HostSpec[], options: { guard?: string; nice?: number } = {}): Promise<Netns> {
    const net = new Netns(options.guard ?? null, options.nice ?? 0);
    try {
      await net.addNamespace(net.bridgeNs);
      await ip(['-n', net.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', net.bridgeNs, 'link', 'set', 'br0', 'up']);
      for (const host of hosts) await net.addHost(host);
    } catch (error) {
      await net.destroy();
      throw error;
    }
    return net;
  }

  get bridgeNs(): string {
    return `${this.prefix}-br`;
  }

  ns(host: string): string {
    if (!this.hosts.has(host)) throw new Error(`no host '${host}'`);
    return `${this.prefix}-${host}`;
  }

  /** The host's own address (without prefix length). */
  address(host: string): string {
    const spec = this.hosts.get(host);
    if (!spec) throw new Error(`no host '${host}'`);
    return spec.address.split('/')[0];
  }

  private async addNamespace(name: string): Promise<void> {
    await ip(['netns', 'add', name]);
    this.namespaces.push(name);
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private async addHost(host: HostSpec): Promise<void> {
    const ns = `${this.prefix}-${host.name}`;
    this.hosts.set(host.name, host);
    await this.addNamespace(ns);
    const port = this.bridgePort(host.name);
    await ip(['-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', this.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up']);
    await ip(['-n', ns, 'addr', 'add', host.address, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  private bridgePort(host: string): string {
    return `p-${host}`.slice(0, 15);
  }

  /** Cuts the host off the bridge (its eth0 goes down; addresses on it stay). */
  async linkDown(host: string): Promise<void> {
    await ip(['-n', this.ns(host), 'link', 'set', 'eth0', 'down']);
  }

  async linkUp(host: string): Promise<void> {
    await ip(['-n', this.ns(host), 'link', 'set', 'eth0', 'up']);
  }

  /** Drops everything between two hosts' own addresses at the bridge's ports (both directions). */
  async partition(a: string, b: string): Promise<void> {
    await this.setPartition(a, b, 'add');
  }

  async heal(a: string, b: string): Promise<void> {
    await this.setPartition(a, b, 'del');
  }

  /** Blackhole routes to the other host's own address, in each host: a partition between the two only. */
  private async setPartition(a: string, b: string, op: 'add' | 'del'): Promise<void> {
    await ip(['-n', this.ns(a), 'route', op, 'blackhole', `${this.address(b)}/32`]);
    await ip(['-n', this.ns(b), 'route', op, 'blackhole', `${this.address(a)}/32`]);
  }

  /** Runs `command` inside the host; the child is tracked and killed by `destroy()`. */
  spawn(host: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const guarded = this.guard ? [this.guard, '3600', command, ...args] : [command, ...args];
    const niced = this.nice !== 0 ? ['nice', '-n', String(this.nice), ...guarded] : guarded;
    const child = spawn('ip', ['netns', 'exec', this.ns(host), ...niced], { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside the host to completion; resolves with its stdout. */
  async exec(host: string, command: string, args: string[], timeoutMs = 20_000): Promise<string> {
    try {
      const { stdout } = await run('ip', ['netns', 'exec', this.ns(host), command, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
      return stdout;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      const wrapped = new Error(`${command} ${args.join(' ')} in ${host}: ${(e.stderr || e.message).trim()}`);
      Object.assign(wrapped, { stdout: e.stdout ?? '' });
      throw wrapped;
    }
  }

  /** SIGKILLs one child started here, by PID, and waits for it to exit. */
  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  }

  /** Kills every child started here, then deletes every namespace created here. */
  async destroy(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.kill(c).catch(() => undefined)));
    for (const name of this.namespaces.splice(0).reverse()) await ip(['netns', 'del', name]).catch(() => undefined);
  }
}
