/**
 * The AF_XDP test topology: three network namespaces, a sender (A), the relay (R) and a
 * receiver (B), joined by two veth pairs. R's ends (`xa`, `xb`) get the relay's XDP program in
 * native mode; A and B talk to the relay only. Each namespace runs one ns-host child (the relay
 * runs in R's), driven over IPC. Names are `xdp<pid>n<k>-{a,r,b}`; `destroy()` kills the children
 * it started (by PID) and deletes its namespaces.
 *
 *   A eth0 10.77.1.2/24 ── xa 10.77.1.1/24  R  xb 10.77.2.1/24 ── eth0 10.77.2.2/24 B
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { ip } from '../helpers/netns';

const run = promisify(execFile);
let labs = 0;

export type Side = 'a' | 'r' | 'b';

export const addresses = { a: '10.77.1.2', ra: '10.77.1.1', rb: '10.77.2.1', b: '10.77.2.2' } as const;

export class Host {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    child.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('ns-host exited'));
      this.pending.clear();
    });
  }

  call<T = unknown>(op: string, args: unknown = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }
}

export class Lab {
  readonly prefix = `xdp${process.pid}n${++labs}`;
  private readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private queues = 1;

  ns(side: Side): string {
    return `${this.prefix}-${side}`;
  }

  static async create(extra: { ra?: string[]; rb?: string[] } = {}, queues = 1): Promise<Lab> {
    const lab = new Lab();
    lab.queues = queues;
    try {
      for (const side of ['a', 'r', 'b'] as const) {
        await ip(['netns', 'add', lab.ns(side)]);
        lab.namespaces.push(lab.ns(side));
        await ip(['-n', lab.ns(side), 'link', 'set', 'lo', 'up']);
      }
      await lab.addLink('a', 'xa', [addresses.ra, ...(extra.ra ?? [])], addresses.a);
      await lab.addLink('b', 'xb', [addresses.rb, ...(extra.rb ?? [])], addresses.b);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  /** The veth pair between the relay (`dev`, with `relayAddresses`) and a party's eth0. */
  async addLink(party: 'a' | 'b', dev: string, relayAddresses: string[], partyAddress: string): Promise<void> {
    const q = ['numtxqueues', String(this.queues), 'numrxqueues', String(this.queues)];
    await ip(['-n', this.ns('r'), 'link', 'add', dev, ...q, 'type', 'veth', 'peer', 'name', 'eth0', ...q, 'netns', this.ns(party)]);
    for (const a of relayAddresses) await ip(['-n', this.ns('r'), 'addr', 'add', `${a}/24`, 'dev', dev]);
    await ip(['-n', this.ns(party), 'addr', 'add', `${partyAddress}/24`, 'dev', 'eth0']);
    await ip(['-n', this.ns('r'), 'link', 'set', dev, 'up']);
    await ip(['-n', this.ns(party), 'link', 'set', 'eth0', 'up']);
  }

  /** Starts an ns-host in the namespace; `wrap` is a command prefix (e.g. setpriv, prlimit). */
  async host(side: Side, wrap: string[] = []): Promise<Host> {
    const script = path.join(__dirname, 'ns-host.ts');
    const child = spawn('ip', ['netns', 'exec', this.ns(side), ...wrap, process.execPath, '--import', 'tsx', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      cwd: path.join(__dirname, '..', '..'),
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    const [ready] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => {
        throw new Error(`ns-host in ${side} exited before it was ready`);
      }),
    ])) as [{ result: string }];
    if (ready.result !== 'ready') throw new Error('ns-host did not say ready');
    return new Host(child);
  }

  /** Runs a command inside a namespace to completion; resolves with its stdout. */
  async exec(side: Side, command: string, args: string[], input?: string): Promise<string> {
    const child = run('ip', ['netns', 'exec', this.ns(side), command, ...args], { timeout: 20_000 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    return (await child).stdout;
  }

  async mac(side: Side, dev: string): Promise<string> {
    const out = await ip(['-n', this.ns(side), '-j', 'link', 'show', 'dev', dev]);
    return (JSON.parse(out) as Array<{ address: string }>)[0].address;
  }

  async destroy(): Promise<void> {
    for (const child of [...this.children]) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    for (const name of this.namespaces.splice(0).reverse()) await ip(['netns', 'del', name]).catch(() => undefined);
  }
}
