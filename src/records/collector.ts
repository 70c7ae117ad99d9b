/**
 * A home collector of call records, named by a `--cdr-target` URL: `http(s)://` (POST of JSON
 * batches), `redis://` (XADD to a stream, de-duplicated by idempotency key), `file://` (JSON
 * lines appended to a local file). A collector delivers a batch whole or fails it whole, within
 * its timeout; the forwarder keeps order and retries. What a collector must do on its side is in
 * src/records/README.md.
 */
import crypto from 'node:crypto';
import { ConfigError } from '../config/load';
import { RtphubError } from '../errors';

/**
 * Why a delivery failed: the collector was unreachable, answered with an error, hung, or
 * rejected the batch for good (it will never take these records as they are: HTTP 4xx other than
 * 408 and 429). The first three are retried; a rejected record goes to the dead letters.
 */
export type FailureKind = 'unreachable' | 'refused' | 'timeout' | 'rejected';

export class CollectorError extends RtphubError {
  override readonly code = 'ERR_COLLECTOR';
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface Collector {
  /** Delivers a batch of serialised records, oldest first; rejects (CollectorError) if any was not taken. */
  send(records: readonly string[]): Promise<void>;
  /** Resolves when the collector is reachable and would take records (the health check). */
  check(): Promise<void>;
  close(): Promise<void>;
}

export interface CollectorOptions {
  /** A request not answered within this time failed (kind `timeout`). */
  timeoutMs: number;
}

export type TargetKind = 'http' | 'redis' | 'file';

export interface Target {
  kind: TargetKind;
  url: URL;
  /** The URL without its password: for logs and metric labels. */
  label: string;
  /** The target's spool directory name: stable for one URL, unique among targets. */
  spoolName: string;
}

const kinds: Record<string, TargetKind> = { 'http:': 'http', 'https:': 'http', 'redis:': 'redis', 'rediss:': 'redis', 'file:': 'file' };

export function parseTarget(text: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`--cdr-target '${text}' is not a URL (http://…, https://…, redis://…, file:///…)`);
  }
  const kind = kinds[url.protocol];
  if (!kind) throw new ConfigError(`--cdr-target '${text}': unsupported scheme ${url.protocol} (http, https, redis, rediss, file)`);
  if (kind === 'file' && (url.pathname === '' || url.pathname.endsWith('/'))) throw new ConfigError(`--cdr-target '${text}' must name a file`);
  const redacted = new URL(url.href);
  if (redacted.password) redacted.password = '***';
  const identity = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  const readable = `${kind}-${url.hostname || 'local'}${url.port ? `-${url.port}` : ''}`.replace(/[^A-Za-z0-9.-]/g, '_');
  const hash = crypto.createHash('sha256').update(identity).digest('hex').slice(0, 10);
  return { kind, url, label: redacted.href, spoolName: `${readable}-${hash}` };
}

/** Classifies a network error: a hang we timed out, or a collector we could not reach. */
export function failure(error: unknown, what: string): CollectorError {
  if (error instanceof CollectorError) return error;
  const e = error as NodeJS.ErrnoException;
  const kind: FailureKind = e.name === 'TimeoutError' || e.code === 'ETIMEDOUT' || /timed? ?out/i.test(e.message ?? '') ? 'timeout' : 'unreachable';
  const message = e.message ?? String(error);
  return new CollectorError(kind, `${what}: ${e.code && !message.includes(e.code) ? `${e.code} ` : ''}${message}`);
}
