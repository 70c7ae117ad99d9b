// The relay's XDP program (native/bpf/xdp_relay.bpf.c, built into the addon as bytes): loads
// it, fills its configuration maps (port range, relay addresses), attaches it to devices (native
// mode, generic when the driver has none) and puts AF_XDP sockets into its XSK map under
// device slot * kXdpQueuesPerDevice + queue. Owned by one AF_XDP backend; detaches on destruction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct bpf_object;

namespace rtphub {

constexpr unsigned kXdpMaxDevices = 64;
constexpr unsigned kXdpQueuesPerDevice = 16;

class XdpProgram {
 public:
  XdpProgram() = default;
  ~XdpProgram();
  XdpProgram(const XdpProgram&) = delete;
  XdpProgram& operator=(const XdpProgram&) = delete;

  // Loads the program; `addresses` are IPv4 addresses in network byte order.
  bool load(uint16_t port_min, uint16_t port_max, const std::vector<uint32_t>& addresses, std::string& error);
  // Attaches to `ifindex` as device `slot` (replacing the slot's earlier device, if any); `mode`
  // says "native" or "generic".
  bool attach(unsigned slot, int ifindex, std::string& mode, std::string& error);
  void detach(unsigned slot);
  bool set_socket(unsigned slot, unsigned queue, int fd);
  void clear_socket(unsigned slot, unsigned queue);

 private:
  bpf_object* object_ = nullptr;
  int program_fd_ = -1;
  int devices_fd_ = -1;
  int xsks_fd_ = -1;
  int ifindex_[kXdpMaxDevices] = {};
  uint32_t flags_[kXdpMaxDevices] = {};
};

}  // namespace rtphub
