/**
 * An HTTP(S) collector: each batch is one POST of a JSON array of records
 * (`content-type: application/json`, `x-rtphub-records: N`); any 2xx answer within the timeout
 * takes the whole batch, anything else fails it whole. The health check POSTs an empty array.
 * Credentials in the URL become Basic authentication. Connections are kept alive.
 */
import http from 'node:http';
import https from 'node:https';
import { Collector, CollectorError, CollectorOptions, failure } from './collector';

export class HttpCollector implements Collector {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(
    private readonly url: URL,
    private readonly options: CollectorOptions,
  ) {
    this.transport = url.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: 2 });
  }

  send(records: readonly string[]): Promise<void> {
    return this.post(`[${records.join(',')}]`, records.length);
  }

  check(): Promise<void> {
    return this.post('[]', 0);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private post(body: string, count: number): Promise<void> {
    const data = Buffer.from(body, 'utf8');
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const request = this.transport.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', 'content-length': data.length, 'x-rtphub-records': count },
      });
      const timer = setTimeout(() => {
        const error = new CollectorError('timeout', `no answer from ${this.url.host} within ${this.options.timeoutMs} ms`);
        settle(error);
        request.destroy(error);
      }, this.options.timeoutMs);
      request.on('response', (response) => {
        response.resume();
        response.on('error', (error) => settle(failure(error, 'HTTP response')));
        response.on('close', () => settle(new CollectorError('unreachable', 'HTTP response cut short')));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) settle();
          else settle(new CollectorError(permanent(status) ? 'rejected' : 'refused', `HTTP ${status} from ${this.url.host}`));
        });
      });
      request.on('error', (error) => settle(failure(error, `POST to ${this.url.host}`)));
      request.end(data);
    });
  }
}

/**
 * A 4xx answer says the request itself is wrong and sending it again will not help (RFC 9110
 * 15.5), except 408 (the collector timed out) and 429 (it is shedding load), which are retried.
 */
function permanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}
