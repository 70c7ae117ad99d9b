// A process with live streams and traffic ends cleanly: on SIGTERM after relay.close() (exit
// code 0, nothing left to keep it alive), and through process.exit() without closing the relay
// (the addon's environment cleanup hook stops the workers and must not hang). Its ports are
// free afterwards.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { BackendName } from '../../src/native/types';
import { backendTest } from '../helpers/backends';
import type { ChildMessage, ChildMode } from '../helpers/relay-child';
import { portBlock } from '../helpers/ports';
import { canBind } from '../helpers/udp';
import { exitWithin, waitFor } from '../helpers/wait';

const ports = portBlock(14);
const script = path.join(__dirname, '..', 'helpers', 'relay-child.ts');

interface Child {
  process: ChildProcess;
  stderr: () => string;
  ready: Promise<Extract<ChildMessage, { type: 'ready' }>>;
}

function startChild(t: ExecutionContext, mode: ChildMode, backend: BackendName): Child {
  const range = ports.take(40);
  const child = fork(script, [mode, backend, String(range.portMin), String(range.portMax)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout?.resume();
  const ready = new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child was not ready within 15 s: ${stderr}`)), 15_000);
    child.on('message', (message: ChildMessage) => {
      clearTimeout(timer);
      if (message.type === 'ready') resolve(message);
      else reject(new Error(`child: ${message.message}`));
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before it was ready: ${stderr}`)));
  });
  return { process: child, stderr: () => stderr, ready };
}

async function portsFree(ready: { ports: number[] }): Promise<void> {
  for (const port of ready.ports) await waitFor(() => canBind(port), `port ${port} to be free`, 2000);
}

backendTest('a child with live streams and traffic exits with code 0 on SIGTERM after relay.close()', async (t, backend) => {
  const child = startChild(t, 'close-on-sigterm', backend);
  const ready = await child.ready;
  t.true(ready.forwarded >= 8, 'traffic was flowing through the child relay');
  const exited = exitWithin(child.process, 5000);
  child.process.kill('SIGTERM');
  t.deepEqual(await exited, { code: 0, signal: null });
  t.is(child.stderr(), '');
  await portsFree(ready);
  t.pass('every port is free again');
});

backendTest('a child that calls process.exit() without closing its relay exits at once with code 0', async (t, backend) => {
  const child = startChild(t, 'exit-without-close', backend);
  const ready = await child.ready;
  const exited = exitWithin(child.process, 5000);
  child.process.send('exit');
  t.deepEqual(await exited, { code: 0, signal: null });
  t.is(child.stderr(), '');
  await portsFree(ready);
  t.pass('every port is free again');
});
