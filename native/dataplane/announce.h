// Announcing that this host now holds an address (hot-standby takeover): a gratuitous ARP for
// IPv4, an unsolicited neighbour advertisement for IPv6, so switches and neighbours send the
// shared address's traffic here at once instead of waiting for their caches to expire.
#pragma once

#include <string>

namespace rtphub {

// Sends `count` announcements of `address` on interface `ifname`. Empty string on success, else
// the reason. Non-blocking sockets; called on the control path only.
std::string announce_address(const std::string& ifname, const std::string& address, int count);

}  // namespace rtphub
