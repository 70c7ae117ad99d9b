// Endpoint helpers: parsing, comparison and formatting of IPv4/IPv6 socket addresses.
#include "endpoint.h"

#include <arpa/inet.h>

namespace rtphub {

uint16_t Endpoint::port() const {
  if (addr.sa.sa_family == AF_INET) return ntohs(addr.v4.sin_port);
  if (addr.sa.sa_family == AF_INET6) return ntohs(addr.v6.sin6_port);
  return 0;
}

void Endpoint::set_port(uint16_t port) {
  if (addr.sa.sa_family == AF_INET) addr.v4.sin_port = htons(port);
  if (addr.sa.sa_family == AF_INET6) addr.v6.sin6_port = htons(port);
}

bool Endpoint::same_address(const Endpoint& other) const {
  if (addr.sa.sa_family != other.addr.sa.sa_family) return false;
  if (addr.sa.sa_family == AF_INET) return addr.v4.sin_addr.s_addr == other.addr.v4.sin_addr.s_addr;
  if (addr.sa.sa_family == AF_INET6)
    return std::memcmp(&addr.v6.sin6_addr, &other.addr.v6.sin6_addr, sizeof(in6_addr)) == 0;
  return false;
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint e;
  if (sa == nullptr) return e;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) std::memcpy(&e.addr.v4, sa, sizeof(sockaddr_in));
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) std::memcpy(&e.addr.v6, sa, sizeof(sockaddr_in6));
  return e;
}

bool Endpoint::parse(const std::string& address, uint16_t port, Endpoint& out) {
  Endpoint e;
  if (inet_pton(AF_INET, address.c_str(), &e.addr.v4.sin_addr) == 1) {
    e.addr.v4.sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, address.c_str(), &e.addr.v6.sin6_addr) == 1) {
    e.addr.v6.sin6_family = AF_INET6;
  } else {
    return false;
  }
  e.set_port(port);
  out = e;
  return true;
}

std::string Endpoint::address_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr.sa.sa_family == AF_INET) inet_ntop(AF_INET, &addr.v4.sin_addr, buf, sizeof(buf));
  if (addr.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &addr.v6.sin6_addr, buf, sizeof(buf));
  return buf;
}

}  // namespace rtphub
