/**
 * Waiting with deadlines: poll a condition (counters, relay info) or wait for a relay event,
 * failing with a message that says what did not happen instead of hanging.
 */
import { once } from 'node:events';
import type { Relay, RelayEvents } from '../../src/native/relay';

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once `condition()` is true; polls every few milliseconds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** The next `name` event of `relay` that satisfies `match`, or a rejection after `timeoutMs`. */
export function nextEvent<K extends keyof RelayEvents>(
  relay: Relay,
  name: K,
  match: (event: RelayEvents[K][0]) => boolean = () => true,
  timeoutMs = 2000,
): Promise<RelayEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const listener = (event: RelayEvents[K][0]): void => {
      if (!match(event)) return;
      cleanup();
      resolve(event);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${String(name)}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      relay.off(name, listener as never);
    };
    relay.on(name, listener as never);
  });
}

/** Resolves with the exit code and signal of a child process or worker, or rejects after `timeoutMs`. */
export async function exitWithin(
  emitter: NodeJS.EventEmitter,
  timeoutMs: number,
): Promise<{ code: number | null; signal: string | null }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const [code, signal] = (await once(emitter, 'exit', { signal: controller.signal })) as [number | null, string | null];
    return { code, signal: signal ?? null };
  } catch {
    throw new Error(`did not exit within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
  }
}
