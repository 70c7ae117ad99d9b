// A UDP endpoint (IPv4 or IPv6 address and port) stored as a sockaddr so the packet path can
// hand it to the kernel without conversion. Family AF_UNSPEC means "not known".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace rtphub {

struct Endpoint {
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } addr;

  Endpoint() { std::memset(&addr, 0, sizeof(addr)); }

  bool known() const { return addr.sa.sa_family == AF_INET || addr.sa.sa_family == AF_INET6; }
  int family() const { return addr.sa.sa_family; }
  socklen_t length() const { return addr.sa.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  uint16_t port() const;
  void set_port(uint16_t port);
  bool same_address(const Endpoint& other) const;
  bool operator==(const Endpoint& other) const { return same_address(other) && port() == other.port(); }
  bool operator!=(const Endpoint& other) const { return !(*this == other); }

  // Copies a kernel-supplied source address; anything but IPv4/IPv6 becomes "not known".
  static Endpoint from_sockaddr(const sockaddr* sa, socklen_t len);
  // Parses a numeric IPv4/IPv6 address; false when it is not one.
  static bool parse(const std::string& address, uint16_t port, Endpoint& out);
  std::string address_string() const;
};

}  // namespace rtphub
