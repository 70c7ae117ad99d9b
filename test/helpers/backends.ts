/**
 * Registers a data-plane test once per packet loop, so every behaviour is checked on both
 * io_uring and epoll. Titles end in "[io_uring]" / "[epoll]" so a failure names its backend.
 */
import test, { type ExecutionContext } from 'ava';
import type { BackendName } from '../../src/native/types';

export const backends: readonly BackendName[] = ['io_uring', 'epoll'];

export type BackendBody = (t: ExecutionContext, backend: BackendName) => Promise<void> | void;

/** One test per backend, run concurrently with the file's other tests. */
export function backendTest(title: string, body: BackendBody): void {
  for (const backend of backends) test(`${title} [${backend}]`, (t) => body(t, backend));
}

/** One test per backend, run one at a time (for tests that count process-wide resources). */
backendTest.serial = (title: string, body: BackendBody): void => {
  for (const backend of backends) test.serial(`${title} [${backend}]`, (t) => body(t, backend));
};

/** Registered but skipped on both backends (a precondition of the machine is missing). */
backendTest.skip = (title: string, body: BackendBody): void => {
  for (const backend of backends) test.skip(`${title} [${backend}]`, (t) => body(t, backend));
};

