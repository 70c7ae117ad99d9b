/**
 * `--proxy=sip:HOST:PORT;priority=N[;transport=tcp]` (repeatable). The config schema splits
 * list options on `;` and `,`, so the URI parameters arrive as items of their own: an item
 * that is only `name=value` (or `lr`) belongs to the URI before it.
 */
import { InvalidArgumentError } from '../errors';
import { parseUri } from '../sip/header-values';

export type SipTransport = 'udp' | 'tcp';

export interface ProxySpec {
  /** The URI as configured, without the priority: the proxy's name in metrics and `ctl proxies`. */
  uri: string;
  host: string;
  port: number;
  transport: SipTransport;
  /** 1 is the first level. */
  priority: number;
}

const PARAM_ONLY = /^(lr|[A-Za-z][A-Za-z0-9-]*=[^:@]*)$/i;

/** Joins the `;`-split pieces of each URI back together. */
export function joinUriItems(items: readonly string[]): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (out.length > 0 && PARAM_ONLY.test(item) && !/^sips?:/i.test(item)) out[out.length - 1] += `;${item}`;
    else out.push(item);
  }
  return out;
}

export function parseProxySpec(text: string): ProxySpec {
  const withScheme = /^sips?:/i.test(text) ? text : `sip:${text}`;
  const uri = parseUri(withScheme);
  if (!uri || uri.user !== undefined) throw new InvalidArgumentError(`proxy '${text}' is not sip:HOST[:PORT][;priority=N][;transport=udp|tcp]`);
  const priorityText = uri.params.get('priority') ?? '1';
  if (!/^\d{1,4}$/.test(priorityText) || Number(priorityText) < 1) throw new InvalidArgumentError(`proxy '${text}': priority must be an integer ≥ 1`);
  const transport = (uri.params.get('transport') ?? 'udp').toLowerCase();
  if (transport !== 'udp' && transport !== 'tcp') throw new InvalidArgumentError(`proxy '${text}': transport must be udp or tcp`);
  const port = uri.port ?? 5060;
  const name = `sip:${uri.host}:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`;
  return { uri: name, host: uri.host, port, transport, priority: Number(priorityText) };
}

export function parseProxySpecs(items: readonly string[]): ProxySpec[] {
  const specs = joinUriItems(items).map(parseProxySpec);
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.uri)) throw new InvalidArgumentError(`proxy ${s.uri} is listed twice`);
    seen.add(s.uri);
  }
  return specs;
}

/** `HOST:PORT` entries of --alternate-path (the backups written into alternatePath). */
export function parseHostPorts(items: readonly string[], option: string): string[] {
  return items.map((item) => {
    const uri = parseUri(/^sips?:/i.test(item) ? item : `sip:${item}`);
    if (!uri || uri.user !== undefined) throw new InvalidArgumentError(`${option} '${item}' is not HOST:PORT`);
    return `${uri.host}:${uri.port ?? 5060}`;
  });
}
