/**
 * The structured header values the proxy reads: SIP URIs, name-addr (From, To, Contact, Route,
 * Record-Route), Via and CSeq. Parsers return null for what they cannot read; callers answer
 * 400 or drop. Parameters keep their order and original case of values; names are compared
 * case-insensitively (stored lower-case).
 */

export type Params = Map<string, string | null>;

export interface SipUri {
  scheme: 'sip' | 'sips';
  user?: string;
  host: string;
  port?: number;
  params: Params;
  /** `?…` URI headers, kept verbatim. */
  headers?: string;
}

export interface NameAddr {
  display?: string;
  uri: string;
  params: Params;
}

export interface Via {
  protocol: string;
  transport: string;
  host: string;
  port?: number;
  params: Params;
}

export interface CSeq {
  seq: number;
  method: string;
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

/** `;a=1;b;c="x"` → params. Null when a name is empty or a quote is unterminated. */
export function parseParams(text: string): Params | null {
  return text.indexOf('"') < 0 ? parseUnquotedParams(text) : parseQuotedParams(text);
}

/** The common case, no quoted values: split on `;`. */
function parseUnquotedParams(text: string): Params | null {
  const params: Params = new Map();
  const pieces = text.split(';');
  if (pieces[0].trim() !== '') return null;
  for (let i = 1; i < pieces.length; i++) {
    const piece = pieces[i];
    const eq = piece.indexOf('=');
    const name = (eq < 0 ? piece : piece.slice(0, eq)).trim().toLowerCase();
    if (name === '') return null;
    params.set(name, eq < 0 ? null : piece.slice(eq + 1).trim());
  }
  return params;
}

function parseQuotedParams(text: string): Params | null {
  const params: Params = new Map();
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    if (text[i] !== ';') return null;
    i++;
    let j = i;
    while (j < text.length && text[j] !== ';' && text[j] !== '=') j++;
    const name = text.slice(i, j).trim().toLowerCase();
    if (name === '') return null;
    if (text[j] !== '=') {
      params.set(name, null);
      i = j;
      continue;
    }
    j++;
    while (text[j] === ' ' || text[j] === '\t') j++;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      if (k >= text.length) return null;
      value = text.slice(j, k + 1);
      i = k + 1;
    } else {
      let k = j;
      while (k < text.length && text[k] !== ';') k++;
      value = text.slice(j, k).trim();
      i = k;
    }
    params.set(name, value);
  }
  return params;
}

export function formatParams(params: Params): string {
  let out = '';
  for (const [name, value] of params) out += value === null ? `;${name}` : `;${name}=${value}`;
  return out;
}

/** Removes the quotes (and backslash escapes) of a quoted-string parameter value. */
export function unquote(value: string): string {
  if (!value.startsWith('"') || !value.endsWith('"') || value.length < 2) return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

function parseHostPort(text: string): { host: string; port?: number } | null {
  const m = HOST.exec(text);
  if (!m) return null;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return null;
  return port === undefined ? { host: m[1].toLowerCase() } : { host: m[1].toLowerCase(), port };
}

export function parseUri(text: string): SipUri | null {
  const m = /^(sips?):(.+)$/i.exec(text.trim());
  if (!m) return null;
  let rest = m[2];
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === '') return null;
  }
  const semi = rest.indexOf(';');
  const hostPart = semi < 0 ? rest : rest.slice(0, semi);
  const hp = parseHostPort(hostPart);
  if (!hp) return null;
  const params = semi < 0 ? new Map() : parseParams(rest.slice(semi));
  if (!params) return null;
  const uri: SipUri = { scheme: m[1].toLowerCase() as 'sip' | 'sips', host: hp.host, params };
  if (user !== undefined) uri.user = user;
  if (hp.port !== undefined) uri.port = hp.port;
  if (headers !== undefined) uri.headers = headers;
  return uri;
}

export function formatUri(uri: SipUri): string {
  const user = uri.user !== undefined ? `${uri.user}@` : '';
  const port = uri.port !== undefined ? `:${uri.port}` : '';
  const headers = uri.headers !== undefined ? `?${uri.headers}` : '';
  return `${uri.scheme}:${user}${uri.host}${port}${formatParams(uri.params)}${headers}`;
}

/** `"Name" <sip:…>;tag=x`, `<sip:…>;p`, or a bare `sip:…;tag=x` (params after a bare URI are the header's). */
export function parseNameAddr(text: string): NameAddr | null {
  const value = text.trim();
  const lt = value.indexOf('<');
  if (lt >= 0) {
    const gt = value.indexOf('>', lt);
    if (gt < 0) return null;
    const display = value.slice(0, lt).trim();
    const params = parseParams(value.slice(gt + 1));
    if (!params) return null;
    const out: NameAddr = { uri: value.slice(lt + 1, gt).trim(), params };
    if (display !== '') out.display = display;
    return out.uri === '' ? null : out;
  }
  if (value === '*') return { uri: '*', params: new Map() };
  const semi = value.indexOf(';');
  const uri = semi < 0 ? value : value.slice(0, semi);
  const params = semi < 0 ? new Map() : parseParams(value.slice(semi));
  if (!params || uri === '' || /\s/.test(uri)) return null;
  return { uri, params };
}

export function formatNameAddr(na: NameAddr): string {
  const display = na.display !== undefined ? `${na.display} ` : '';
  return `${display}<${na.uri}>${formatParams(na.params)}`;
}

export function tagOf(nameAddr: string): string | undefined {
  const na = parseNameAddr(nameAddr);
  const tag = na?.params.get('tag');
  return tag === null || tag === undefined ? undefined : tag;
}

export function parseVia(text: string): Via | null {
  // sent-protocol: SIP / 2.0 / transport (LWS allowed around the slashes), then sent-by, then params
  const value = text.trim();
  const parts = value.split('/');
  if (parts.length < 3 || parts[0].trim().toUpperCase() !== 'SIP' || parts[1].trim() !== '2.0') return null;
  const rest = parts.slice(2).join('/').trimStart();
  const space = rest.search(/\s/);
  if (space <= 0) return null;
  const transport = rest.slice(0, space);
  if (!/^[A-Za-z0-9-]+$/.test(transport)) return null;
  const after = rest.slice(space).trimStart();
  const semi = after.indexOf(';');
  const hp = parseHostPort((semi < 0 ? after : after.slice(0, semi)).trim());
  if (!hp) return null;
  const params = semi < 0 ? new Map() : parseParams(after.slice(semi));
  if (!params) return null;
  const via: Via = { protocol: 'SIP/2.0', transport: transport.toUpperCase(), host: hp.host, params };
  if (hp.port !== undefined) via.port = hp.port;
  return via;
}

export function formatVia(via: Via): string {
  const port = via.port !== undefined ? `:${via.port}` : '';
  return `${via.protocol}/${via.transport} ${via.host}${port}${formatParams(via.params)}`;
}

export function parseCSeq(text: string): CSeq | null {
  const m = /^(\d{1,10})\s+(\S+)$/.exec(text.trim());
  return m ? { seq: Number(m[1]), method: m[2] } : null;
}

/** Brackets stripped: `[::1]` → `::1`, for sockets. */
export function socketHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
