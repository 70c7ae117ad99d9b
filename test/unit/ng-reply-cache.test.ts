// Unit tests of the cookie reply cache: one run per key, joining runs in progress,
// expiry after the TTL, size bound, and forgetting failed runs.
import test from 'ava';
import { ReplyCache } from '../../src/ng/reply-cache';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('a repeated key gets the cached reply without running again', async (t) => {
  const cache = new ReplyCache<string>();
  let runs = 0;
  const work = async () => `reply ${++runs}`;
  t.deepEqual(await cache.run('c1', work), { value: 'reply 1', duplicate: false });
  t.deepEqual(await cache.run('c1', work), { value: 'reply 1', duplicate: true });
  t.deepEqual(await cache.run('c2', work), { value: 'reply 2', duplicate: false });
  t.is(runs, 2);
});

test('a duplicate arriving during the first run waits for the same result', async (t) => {
  const cache = new ReplyCache<string>();
  const d = deferred<string>();
  let runs = 0;
  const work = () => {
    runs++;
    return d.promise;
  };
  const first = cache.run('k', work);
  const second = cache.run('k', work);
  d.resolve('done');
  t.deepEqual(await first, { value: 'done', duplicate: false });
  t.deepEqual(await second, { value: 'done', duplicate: true });
  t.is(runs, 1);
});

test('entries expire ttl after the reply was made, not after the request came', async (t) => {
  let now = 1000;
  const cache = new ReplyCache<number>({ ttlMs: 60_000, now: () => now });
  const d = deferred<number>();
  const first = cache.run('k', () => d.promise);
  now += 50_000; // slow command
  d.resolve(1);
  await first;
  now += 59_000;
  t.true((await cache.run('k', async () => 2)).duplicate, 'still cached 59 s after the reply');
  now += 1_001;
  t.deepEqual(await cache.run('k', async () => 3), { value: 3, duplicate: false });
});

test('expired entries are dropped from the map', async (t) => {
  let now = 0;
  const cache = new ReplyCache<number>({ ttlMs: 10, now: () => now });
  await cache.run('a', async () => 1);
  await cache.run('b', async () => 2);
  t.is(cache.size, 2);
  now = 11;
  await cache.run('c', async () => 3);
  t.is(cache.size, 1);
});

test('the cache holds at most maxEntries keys, dropping the oldest', async (t) => {
  const cache = new ReplyCache<number>({ maxEntries: 3 });
  for (let i = 0; i < 5; i++) await cache.run(`k${i}`, async () => i);
  t.is(cache.size, 3);
  t.false((await cache.run('k0', async () => 99)).duplicate, 'k0 was evicted');
  t.true((await cache.run('k4', async () => 99)).duplicate, 'k4 is still there');
});

test('a failed run is forgotten so a retransmission runs again', async (t) => {
  const cache = new ReplyCache<string>();
  await t.throwsAsync(cache.run('k', async () => Promise.reject(new Error('boom'))), { message: 'boom' });
  t.is(cache.size, 0);
  t.deepEqual(await cache.run('k', async () => 'ok'), { value: 'ok', duplicate: false });
});

test('a synchronous throw is forgotten too', async (t) => {
  const cache = new ReplyCache<string>();
  const work = (): Promise<string> => {
    throw new Error('sync');
  };
  await t.throwsAsync(cache.run('k', work), { message: 'sync' });
  t.is(cache.size, 0);
});

test('duplicates of a run that fails see the failure', async (t) => {
  const cache = new ReplyCache<string>();
  const d = deferred<string>();
  const first = cache.run('k', () => d.promise);
  const second = cache.run('k', () => d.promise);
  d.reject(new Error('nope'));
  await t.throwsAsync(first);
  await t.throwsAsync(second);
});

test('clear drops everything; a run in progress still answers its caller', async (t) => {
  const cache = new ReplyCache<string>();
  const d = deferred<string>();
  const first = cache.run('k', () => d.promise);
  cache.clear();
  d.resolve('x');
  t.is((await first).value, 'x');
  t.is(cache.size, 0, 'a cleared run is not re-inserted');
});
