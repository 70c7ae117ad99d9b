/**
 * The `alternatePath` parameter of seed 002: the backups of a proxy, written by that proxy
 * into its Record-Route (as a URI parameter, so it lives on in every party's route set, which
 * RFC 3261 12.1 builds from the URIs) and its Via (a header parameter, quoted because `:` is not
 * a token character). The value lists HOST:PORT entries separated by `+` (`,` and spaces are
 * read too, for values written by others).
 */
import { formatUri, Params, parseUri, SipUri, unquote } from './header-values';

export const ALTERNATE_PATH = 'alternatepath';
/** As written: the patent's spelling (parameter names compare case-insensitively). */
export const ALTERNATE_PATH_NAME = 'alternatePath';

export interface HostPort {
  host: string;
  port: number;
}

export function formatHostPorts(list: readonly string[]): string {
  return list.join('+');
}

export function parseHostPort(text: string): HostPort | null {
  const uri = parseUri(`sip:${text.trim()}`);
  if (!uri || uri.user !== undefined || uri.params.size > 0) return null;
  return { host: uri.host, port: uri.port ?? 5060 };
}

/** The backups an alternatePath parameter names (none when absent or unreadable). */
export function alternatesOf(params: Params): HostPort[] {
  const raw = params.get(ALTERNATE_PATH);
  if (raw === undefined || raw === null) return [];
  return unquote(raw)
    .split(/[+,\s]+/)
    .filter(Boolean)
    .flatMap((item) => {
      const hp = parseHostPort(item);
      return hp ? [hp] : [];
    });
}

export function sameHostPort(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}

export function uriHostPort(uri: SipUri): HostPort {
  return { host: uri.host, port: uri.port ?? (uri.scheme === 'sips' ? 5061 : 5060) };
}

/** A URI naming `to` instead of its own host (the backup taking a failed primary's place). */
export function retarget(uri: SipUri, to: HostPort): string {
  return formatUri({ ...uri, host: to.host, port: to.port });
}
