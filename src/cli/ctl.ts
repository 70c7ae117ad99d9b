/**
 * `rtphub ctl [--ng=IP:PORT] COMMAND [ARGS]`: an operator's ng client. Prints the reply as JSON
 * and exits 0 when the relay answered `ok`/`pong`, 1 otherwise.
 *   ping | list | statistics | query CALL-ID | delete CALL-ID [FROM-TAG]
 *   ha | switchover | active | standby        (high availability; see src/ha/admin.ts)
 *   proxies                                    (the SIP front's proxy table; see src/sip/admin.ts)
 */
import { parseArgs } from 'node:util';
import { BEncodable, toPlain } from '../ng/bencode';
import { NgClient } from '../ng/client';
import { parseListenAddress } from '../ng/listen-address';

const usage =
  'usage: rtphub ctl [--ng=IP:PORT] ping | list | statistics | query CALL-ID | delete CALL-ID [FROM-TAG] | ha | switchover | active | standby | proxies';

function commandFor(words: string[]): Record<string, BEncodable> {
  const [name, callId, fromTag] = words;
  switch (name) {
    case 'ping':
    case 'list':
    case 'statistics':
      return { command: name };
    case 'ha':
      return { command: 'cli', 'cli args': 'ha status' };
    case 'proxies':
      return { command: 'cli', 'cli args': 'proxies' };
    case 'switchover':
    case 'active':
    case 'standby':
      return { command: 'cli', 'cli args': `ha ${name}` };
    case 'query':
    case 'delete':
      if (!callId) throw new Error(usage);
      return fromTag ? { command: name, 'call-id': callId, 'from-tag': fromTag } : { command: name, 'call-id': callId };
    default:
      throw new Error(usage);
  }
}

export async function ctl(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ng: { type: 'string', default: '127.0.0.1:22222' }, timeout: { type: 'string', default: '1000' } },
    allowPositionals: true,
  });
  const where = parseListenAddress(values.ng ?? '127.0.0.1:22222');
  const client = new NgClient({ host: where.address === '0.0.0.0' ? '127.0.0.1' : where.address, port: where.port, timeoutMs: Number(values.timeout) });
  try {
    const reply = await client.request(commandFor(positionals));
    process.stdout.write(`${JSON.stringify(toPlain(reply), null, 2)}\n`);
    const result = reply.result?.toString();
    return result === 'ok' || result === 'pong' ? 0 : 1;
  } finally {
    client.close();
  }
}
