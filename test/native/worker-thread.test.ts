// The addon in a worker thread: it loads in the worker's own environment (next to the main
// thread's), forwards and reports events there, closes cleanly so the worker ends by itself,
// and a worker terminated with a live relay gives its sockets back through the cleanup hook.
// Termination under a flow of engine events runs in a child process, so that if it ever aborted
// the process again only the child would die.
import { fork } from 'node:child_process';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import test, { type ExecutionContext } from 'ava';
import type { RelayWorkerData, RelayWorkerMessage } from '../helpers/relay-worker';
import { backendTest } from '../helpers/backends';
import { rtp } from '../helpers/packets';
import { portBlock } from '../helpers/ports';
import { connect, legEndpoint, startRelay } from '../helpers/relay';
import { startTsWorker } from '../helpers/ts-worker';
import { canBind, Party } from '../helpers/udp';
import { exitWithin, waitFor } from '../helpers/wait';

const ports = portBlock(13);
const script = path.join(__dirname, '..', 'helpers', 'relay-worker.ts');

/** The next message of `type` from the worker (rejects on a worker error or after a timeout). */
function message<T extends RelayWorkerMessage['type']>(worker: Worker, type: T, timeoutMs = 5000): Promise<Extract<RelayWorkerMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new Error(`no '${type}' message from the worker within ${timeoutMs} ms`))), timeoutMs);
    const onMessage = (m: RelayWorkerMessage): void => {
      if (m.type === 'error') finish(() => reject(new Error(`worker: ${m.message}`)));
      else if (m.type === type) finish(() => resolve(m as Extract<RelayWorkerMessage, { type: T }>));
    };
    const onError = (error: Error): void => finish(() => reject(error));
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      settle();
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

function startWorker(t: ExecutionContext, data: RelayWorkerData): Worker {
  const worker = startTsWorker(script, data);
  t.teardown(() => worker.terminate());
  return worker;
}

backendTest('a relay in a worker thread forwards, reports events and closes cleanly', async (t, backend) => {
  const range = ports.take(20);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const worker = startWorker(t, { backend, ...range, remoteB: b.endpoint });
  const ready = await message(worker, 'ready', 10_000);
  t.is(ready.backend, backend);

  // The main thread runs a relay of its own at the same time: the addon's state is per environment.
  const mainRelay = startRelay(t, backend, ports.take(20));
  const [c, d] = [await Party.open(t), await Party.open(t)];
  const mainStream = await connect(mainRelay, c, d);

  const learned = message(worker, 'learned');
  const up = rtp({ seq: 1, ssrc: 0xa });
  await a.send(up, ready.a);
  t.deepEqual((await b.receive()).data, up, 'the worker relay forwards A to B');
  t.deepEqual((await learned).endpoint, a.endpoint, 'its learned event reaches the worker');
  const down = rtp({ seq: 2, ssrc: 0xb });
  await b.send(down, ready.b);
  t.deepEqual((await a.receive()).data, down, 'and B to the learned A');

  const local = rtp({ seq: 3, ssrc: 0xc });
  await c.send(local, legEndpoint(mainStream, 'a'));
  t.deepEqual((await d.receive()).data, local, 'the main-thread relay forwards too');

  const exited = exitWithin(worker, 5000);
  worker.postMessage('close');
  await message(worker, 'closed');
  t.deepEqual(await exited, { code: 0, signal: null }, 'the worker ends by itself once the relay is closed');
  for (const port of [ready.a.port, ready.a.port + 1, ready.b.port, ready.b.port + 1]) t.true(await canBind(port), `port ${port} is free`);
});

backendTest('terminating a worker with a live relay frees its ports and leaves the main thread working', async (t, backend) => {
  const range = ports.take(20);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const worker = startWorker(t, { backend, ...range, remoteB: b.endpoint });
  const ready = await message(worker, 'ready', 10_000);
  const learned = message(worker, 'learned');
  const packet = rtp({ seq: 1 });
  await a.send(packet, ready.a);
  t.deepEqual((await b.receive()).data, packet);
  await learned; // the last event this relay sends: nothing is pending when the worker is terminated

  const exited = exitWithin(worker, 5000);
  await worker.terminate();
  t.is((await exited).code, 1, 'terminated');
  for (const port of [ready.a.port, ready.a.port + 1, ready.b.port, ready.b.port + 1]) {
    await waitFor(() => canBind(port), `port ${port} to be free`, 1000);
  }

  const relay = startRelay(t, backend, range);
  const stream = await connect(relay, a, b);
  await a.send(packet, legEndpoint(stream, 'a'));
  t.deepEqual((await b.receive()).data, packet, 'the addon still works in the main thread, on the same ports');
});

// io_uring tears a ring down (and drops its registered sockets) later, from a workqueue; so a
// worker stopping with live streams detaches and closes every socket itself before it exits
// (Worker::release_all_sockets). The check binds the ports right after terminate() resolved.
test.serial('terminating a worker with a live relay frees its ports by the time it has exited [io_uring]', async (t) => {
  const range = ports.take(20);
  const [a, b] = [await Party.open(t), await Party.open(t)];
  const worker = startWorker(t, { backend: 'io_uring', ...range, remoteB: b.endpoint });
  const ready = await message(worker, 'ready', 10_000);
  const learned = message(worker, 'learned');
  await a.send(rtp({ seq: 1 }), ready.a);
  await learned;
  // A bind attempt, not /proc/net/udp: that listing can skip sockets while other tests open and
  // close theirs (the kernel walks its hash table without a snapshot).
  t.false(await canBind(ready.a.port), 'bound while the relay runs');
  await worker.terminate();
  const all = [ready.a.port, ready.a.port + 1, ready.b.port, ready.b.port + 1];
  const free = await Promise.all(all.map((port) => canBind(port)));
  t.deepEqual(all.filter((_, i) => !free[i]), [], 'ports still bound after the worker exited');
});

// While a worker's environment is terminated, every N-API call may fail; no C++ exception may
// then leave the thread-safe function's callback or a method wrapper (EngineWrap::deliver catches,
// and the addon is built with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS). Events flow only while a
// batch is pending, hence the churning relay in the child.
backendTest('terminating a worker while its relay sends events does not abort the process', async (t, backend) => {
  const range = ports.take(20);
  const child = fork(path.join(__dirname, '..', 'helpers', 'terminate-worker-child.ts'), [backend, String(range.portMin), String(range.portMax), '6'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = await exitWithin(child, 30_000);
  t.deepEqual(exit, { code: 0, signal: null }, stderr);
});
