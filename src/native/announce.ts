/** Address announcements (gratuitous ARP / unsolicited NA) done by the addon's raw sockets. */
import { binding } from './binding';

/** Tells the link that `address` is now on `ifname`; throws SystemError when it cannot. */
export function announceAddress(ifname: string, address: string, count = 3): void {
  binding().announceAddress(ifname, address, count);
}
