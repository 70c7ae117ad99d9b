/** Public exports of rtphub. */
export { Relay, Stream } from './native/relay';
export type { RelayInfo } from './native/relay';
export * from './native/types';
export * from './errors';
