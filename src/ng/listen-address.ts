/**
 * Parsing of rtpengine-style listen addresses (`--listen-ng`, `--listen-tcp-ng`): `PORT`,
 * `IPv4:PORT` or `[IPv6]:PORT` (brackets required for IPv6). A bare port listens on every
 * IPv4 address, as rtpengine does; give an address to restrict it.
 */
import { isIP } from 'node:net';
import { NgError } from './errors';

export interface ListenAddress {
  address: string;
  port: number;
}

/** The listen address is not of a form above. */
export class ListenAddressError extends NgError {
  override readonly name = 'ListenAddressError';
}

/** Parses `s`; a `ListenAddress` object passes through after checks. */
export function parseListenAddress(s: string | number | ListenAddress): ListenAddress {
  if (typeof s === 'number') return { address: '0.0.0.0', port: checkPort(s, String(s)) };
  if (typeof s !== 'string') return { address: checkAddress(s.address, s.address), port: checkPort(s.port, String(s.port)) };
  const text = s.trim();
  if (/^\d+$/.test(text)) return { address: '0.0.0.0', port: checkPort(Number(text), s) };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new ListenAddressError(`Invalid listen address "${s}": expected [ADDRESS:]PORT`);
  return { address: checkAddress(m[1], s), port: checkPort(Number(m[2]), s) };
}

function checkPort(port: number, original: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ListenAddressError(`Invalid port in listen address "${original}"`);
  }
  return port;
}

function checkAddress(address: string, original: string): string {
  if (isIP(address) === 0) throw new ListenAddressError(`Invalid IP address in listen address "${original}"`);
  return address;
}
