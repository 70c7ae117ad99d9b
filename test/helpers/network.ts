/** What the machine's loopback offers: IPv6 tests run only where ::1 is configured. */
import os from 'node:os';

export const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((addresses) =>
  (addresses ?? []).some((a) => a.family === 'IPv6' && a.address === '::1'),
);
