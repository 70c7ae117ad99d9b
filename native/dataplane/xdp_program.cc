// Loading and attaching the relay's XDP program with libbpf.
#include "xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <cstring>

namespace rtphub {

extern const unsigned char kXdpRelayObject[];
extern const unsigned long kXdpRelayObjectSize;

namespace {

struct RelayConfig {  // mirrors struct relay_config in native/bpf/xdp_relay.bpf.c
  uint32_t port_min;
  uint32_t port_max;
  uint32_t queues_per_device;
};

std::string failed(const char* what, int err) { return std::string(what) + ": " + std::strerror(err < 0 ? -err : err); }

}  // namespace

XdpProgram::~XdpProgram() {
  for (unsigned slot = 0; slot < kXdpMaxDevices; slot++) detach(slot);
  if (object_ != nullptr) bpf_object__close(object_);
}

bool XdpProgram::load(uint16_t port_min, uint16_t port_max, const std::vector<uint32_t>& addresses, std::string& error) {
  LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = "rtphub_xdp");
  object_ = bpf_object__open_mem(kXdpRelayObject, kXdpRelayObjectSize, &options);
  if (object_ == nullptr) {
    error = failed("opening the XDP program", errno);
    return false;
  }
  const int loaded = bpf_object__load(object_);
  if (loaded != 0) {
    error = failed("loading the XDP program (needs root or CAP_BPF+CAP_NET_ADMIN)", loaded);
    return false;
  }
  bpf_program* program = bpf_object__find_program_by_name(object_, "rtphub_xdp");
  program_fd_ = program != nullptr ? bpf_program__fd(program) : -1;
  const int config_fd = bpf_object__find_map_fd_by_name(object_, "relay_config");
  const int addresses_fd = bpf_object__find_map_fd_by_name(object_, "relay_addresses");
  devices_fd_ = bpf_object__find_map_fd_by_name(object_, "relay_devices");
  xsks_fd_ = bpf_object__find_map_fd_by_name(object_, "relay_xsks");
  if (program_fd_ < 0 || config_fd < 0 || addresses_fd < 0 || devices_fd_ < 0 || xsks_fd_ < 0) {
    error = "the XDP program lacks its program or maps";
    return false;
  }
  const uint32_t zero = 0;
  const RelayConfig config{port_min, port_max, kXdpQueuesPerDevice};
  if (bpf_map_update_elem(config_fd, &zero, &config, BPF_ANY) != 0) {
    error = failed("configuring the XDP program", errno);
    return false;
  }
  for (uint32_t address : addresses) {
    const uint32_t one = 1;
    if (bpf_map_update_elem(addresses_fd, &address, &one, BPF_ANY) != 0) {
      error = failed("adding a relay address to the XDP program", errno);
      return false;
    }
  }
  return true;
}

bool XdpProgram::attach(unsigned slot, int ifindex, std::string& mode, std::string& error) {
  if (slot >= kXdpMaxDevices) {
    error = "too many XDP devices";
    return false;
  }
  detach(slot);
  const uint32_t key = static_cast<uint32_t>(ifindex);
  if (bpf_map_update_elem(devices_fd_, &key, &slot, BPF_ANY) != 0) {
    error = failed("registering the device with the XDP program", errno);
    return false;
  }
  // Native mode first; generic (skb) mode only for drivers without XDP support.
  uint32_t flags = XDP_FLAGS_DRV_MODE;
  int r = bpf_xdp_attach(ifindex, program_fd_, flags, nullptr);
  if (r != 0) {
    flags = XDP_FLAGS_SKB_MODE;
    r = bpf_xdp_attach(ifindex, program_fd_, flags, nullptr);
  }
  if (r != 0) {
    bpf_map_delete_elem(devices_fd_, &key);
    error = failed("attaching the XDP program", r);
    return false;
  }
  ifindex_[slot] = ifindex;
  flags_[slot] = flags;
  mode = flags == XDP_FLAGS_DRV_MODE ? "native" : "generic";
  return true;
}

void XdpProgram::detach(unsigned slot) {
  if (slot >= kXdpMaxDevices || ifindex_[slot] == 0) return;
  for (unsigned queue = 0; queue < kXdpQueuesPerDevice; queue++) clear_socket(slot, queue);
  // Only our program: a device that went away and came back has no program, or someone else's.
  LIBBPF_OPTS(bpf_xdp_attach_opts, options, .old_prog_fd = program_fd_);
  bpf_xdp_detach(ifindex_[slot], flags_[slot] | XDP_FLAGS_REPLACE, &options);
  const uint32_t key = static_cast<uint32_t>(ifindex_[slot]);
  bpf_map_delete_elem(devices_fd_, &key);
  ifindex_[slot] = 0;
}

bool XdpProgram::set_socket(unsigned slot, unsigned queue, int fd) {
  const uint32_t key = slot * kXdpQueuesPerDevice + queue;
  const uint32_t value = static_cast<uint32_t>(fd);
  return bpf_map_update_elem(xsks_fd_, &key, &value, BPF_ANY) == 0;
}

void XdpProgram::clear_socket(unsigned slot, unsigned queue) {
  const uint32_t key = slot * kXdpQueuesPerDevice + queue;
  bpf_map_delete_elem(xsks_fd_, &key);
}

}  // namespace rtphub
