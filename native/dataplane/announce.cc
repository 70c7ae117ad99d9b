// Gratuitous ARP (RFC 5227 section 3: an ARP request with sender and target protocol address
// both set to the announced address) and unsolicited neighbour advertisement (RFC 4861 section
// 7.2.6: override flag set, sent to all-nodes with a hop limit of 255).
#include "announce.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rtphub {
namespace {

std::string error_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool interface_mac(const std::string& ifname, uint8_t mac[6]) {
  Descriptor fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (fd.get() < 0 || ioctl(fd.get(), SIOCGIFHWADDR, &req) < 0) return false;
  std::memcpy(mac, req.ifr_hwaddr.sa_data, 6);
  return true;
}

std::string gratuitous_arp(const std::string& ifname, const in_addr& address, int count) {
  const unsigned index = if_nametoindex(ifname.c_str());
  uint8_t mac[6];
  if (index == 0 || !interface_mac(ifname, mac)) return error_text(("interface " + ifname).c_str());
  uint8_t frame[42] = {};
  std::memset(frame, 0xff, 6);
  std::memcpy(frame + 6, mac, 6);
  frame[12] = 0x08, frame[13] = 0x06;                 // ARP
  frame[14] = 0x00, frame[15] = 0x01;                 // Ethernet
  frame[16] = 0x08, frame[17] = 0x00;                 // IPv4
  frame[18] = 6, frame[19] = 4, frame[21] = 1;        // sizes, request
  std::memcpy(frame + 22, mac, 6);                    // sender MAC
  std::memcpy(frame + 28, &address, 4);               // sender IP
  std::memcpy(frame + 38, &address, 4);               // target IP (target MAC stays zero)
  Descriptor fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP)));
  if (fd.get() < 0) return error_text("AF_PACKET socket");
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(index);
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  for (int i = 0; i < count; i++)
    if (sendto(fd.get(), frame, sizeof(frame), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) return error_text("send ARP");
  return "";
}

std::string unsolicited_advertisement(const std::string& ifname, const in6_addr& address, int count) {
  uint8_t mac[6];
  if (if_nametoindex(ifname.c_str()) == 0 || !interface_mac(ifname, mac)) return error_text(("interface " + ifname).c_str());
  Descriptor fd(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6));
  if (fd.get() < 0) return error_text("ICMPv6 socket");
  const int hops = 255;
  setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
  setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size()));
  sockaddr_in6 from{};
  from.sin6_family = AF_INET6;
  from.sin6_addr = address;
  bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof(from));  // best effort: the kernel picks a source otherwise
  uint8_t message[32] = {};
  message[0] = ND_NEIGHBOR_ADVERT;
  message[4] = 0x20;                            // override
  std::memcpy(message + 8, &address, 16);       // target
  message[24] = 2, message[25] = 1;             // target link-layer address option
  std::memcpy(message + 26, mac, 6);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = if_nametoindex(ifname.c_str());
  for (int i = 0; i < count; i++)
    if (sendto(fd.get(), message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
      return error_text("send neighbour advertisement");
  return "";
}

}  // namespace

std::string announce_address(const std::string& ifname, const std::string& address, int count) {
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return gratuitous_arp(ifname, v4, count);
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) return unsolicited_advertisement(ifname, v6, count);
  return "not an IP address: " + address;
}

}  // namespace rtphub
