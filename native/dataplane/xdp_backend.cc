// The AF_XDP packet loop: kernel bypass with no socket per port. The relay's XDP program hands
// this worker the UDP packets for the relay's addresses and port range, through one AF_XDP
// socket per device queue; all of them share one UMEM (frames of 2 KiB) so a packet received on
// one device is sent out of another from the same frame. A port is an entry in a table (address,
// port) -> token: attaching a leg costs no descriptor.
//
// Frames: a free stack (worker only) feeds each socket's fill ring, capped at its share of half
// the UMEM, so one direction can never take every frame; the other half covers frames queued for
// transmit. A received frame is forwarded in place: the Ethernet/IPv4/UDP headers are rewritten
// just in front of the payload (the next hop's MAC from the kernel's neighbour table) and the
// frame goes to the egress device's transmit ring; its completion returns it to the stack.
//
// Wake-ups: the worker sleeps in poll(2) on the sockets and its eventfd, then gathers for the
// coalescing window; the kernel is kicked only when a ring says it needs a wake-up.
//
// Devices: every half second each device's ifindex is checked; when one went away (or came back
// as a new device) the sockets and UMEM are rebuilt over the devices present. Frames in flight
// at that moment are lost, as on a link that went down.
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "backend.h"
#include "clock.h"
#include "xdp_headers.h"
#include "xdp_neighbours.h"
#include "xdp_program.h"

namespace rtphub {
namespace {

constexpr uint32_t kFrameSize = 2048;
constexpr unsigned kRxBatch = 256;
constexpr uint64_t kNoToken = ~0ull;
constexpr uint64_t kDeviceCheckMs = 500;
constexpr uint64_t kNeighbourRefreshMs = 10;
constexpr unsigned kNeighbourBudget = 32;

bool power_of_two(unsigned v) { return v != 0 && (v & (v - 1)) == 0; }

// Receive queues of a device (ethtool channels); 1 when the driver does not say.
unsigned device_queues(const std::string& name) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  ethtool_channels channels{};
  channels.cmd = ETHTOOL_GCHANNELS;
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  request.ifr_data = reinterpret_cast<char*>(&channels);
  const int r = ioctl(fd, SIOCETHTOOL, &request);
  close(fd);
  if (r < 0) return 1;
  unsigned n = channels.rx_count + channels.combined_count;
  if (n == 0) n = 1;
  return n < kXdpQueuesPerDevice ? n : kXdpQueuesPerDevice;
}

bool device_mac(const std::string& name, uint8_t* mac) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  const int r = ioctl(fd, SIOCGIFHWADDR, &request);
  close(fd);
  if (r < 0) return false;
  std::memcpy(mac, request.ifr_hwaddr.sa_data, 6);
  return true;
}

class XdpBackend final : public Backend {
 public:
  XdpBackend(const BackendConfig& config, int wake_fd) : config_(config), counters_(*config.counters), wake_fd_(wake_fd) {
    ports_per_address_ = static_cast<uint32_t>(config.xdp.port_max) - config.xdp.port_min + 1;
    tokens_.assign(config.xdp.addresses.size(), std::vector<uint64_t>(ports_per_address_, kNoToken));
    for (const Endpoint& a : config.xdp.addresses) addresses_.push_back(a.addr.v4.sin_addr.s_addr);
    devices_.resize(config.xdp.devices.size());
    for (size_t i = 0; i < devices_.size(); i++) devices_[i].name = config.xdp.devices[i];
    free_frames_.reserve(config.xdp.frames);
  }

  ~XdpBackend() override {
    teardown();
    if (area_ != nullptr) munmap(area_, area_size_);
  }

  bool start(std::string& error) {
    if (!program_.load(config_.xdp.port_min, config_.xdp.port_max, addresses_, error)) return false;
    if (!neighbours_.open(error)) return false;
    area_size_ = static_cast<size_t>(config_.xdp.frames) * kFrameSize;
    void* area = mmap(nullptr, area_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) {
      error = std::string("mmap UMEM: ") + std::strerror(errno);
      return false;
    }
    area_ = static_cast<uint8_t*>(area);
    for (Device& d : devices_) {
      d.ifindex = static_cast<int>(if_nametoindex(d.name.c_str()));
      if (d.ifindex == 0) {
        error = "no such network device: " + d.name;
        return false;
      }
    }
    reserve_port_range();
    return build(error);
  }

  const char* name() const override { return "af_xdp"; }
  std::string note() const override { return note_; }
  bool socketless() const override { return true; }

  int attach(int fd, uint64_t) override {
    close(fd);
    return -EOPNOTSUPP;
  }

  // Handle: address index << 16 | port.
  int attach_port(const Endpoint& local, uint64_t token) override {
    if (local.family() != AF_INET) return -EAFNOSUPPORT;
    const uint16_t port = local.port();
    if (port < config_.xdp.port_min || port > config_.xdp.port_max) return -EINVAL;
    for (size_t i = 0; i < addresses_.size(); i++) {
      if (addresses_[i] != local.addr.v4.sin_addr.s_addr) continue;
      uint64_t& entry = tokens_[i][port - config_.xdp.port_min];
      if (entry != kNoToken) return -EADDRINUSE;
      entry = token;
      return static_cast<int>((i << 16) | port);
    }
    return -EADDRNOTAVAIL;
  }

  void detach(int handle, uint64_t token) override {
    if (handle < 0) return;
    const size_t address = static_cast<size_t>(handle) >> 16;
    const uint16_t port = static_cast<uint16_t>(handle & 0xffff);
    if (address >= tokens_.size() || port < config_.xdp.port_min || port > config_.xdp.port_max) return;
    uint64_t& entry = tokens_[address][port - config_.xdp.port_min];
    if (entry != token) return;
    entry = kNoToken;
    detached_.push_back(token);
  }

  void poll(PacketSink& sink, int timeout_ms) override {
    if (!detached_.empty()) {
      for (uint64_t token : detached_) sink.on_detached(token);
      detached_.clear();
      timeout_ms = 0;
    }
    maintain();
    reclaim();
    if (!wait(timeout_ms)) return;
    counters_.add(EngineCounter::wakeups);
    sink.on_batch();
    for (Socket& s : sockets_) receive(sink, s);
    for (Socket& s : sockets_) transmit(s);
    reclaim();
  }

 private:
  struct Device {
    std::string name;
    int ifindex = 0;  // 0: absent
    unsigned queues = 0;
    uint8_t mac[6] = {};
    std::string mode;  // native or generic XDP
    bool attached = false;
    unsigned first_socket = 0;  // index into sockets_ of its queue 0
  };

  struct Socket {
    xsk_socket* xsk = nullptr;
    xsk_ring_cons rx{};
    xsk_ring_prod tx{};
    xsk_ring_prod fill{};
    xsk_ring_cons comp{};
    unsigned device = 0;
    unsigned queue = 0;
    unsigned rx_held = 0;      // frames in the fill and rx rings (the kernel's, for receiving)
    unsigned tx_held = 0;      // frames in the tx and completion rings
    unsigned tx_unsubmitted = 0;
  };

  // ---- set-up ----------------------------------------------------------------------------

  bool build(std::string& error) {
    if (!create_umem_and_sockets(true, error)) {
      // Zero-copy refused by some driver: everything in copy mode (one UMEM, one mode).
      teardown();
      if (!create_umem_and_sockets(false, error)) return false;
    }
    std::vector<int> ifindexes;
    for (const Device& d : devices_) ifindexes.push_back(d.attached ? d.ifindex : 0);
    neighbours_.set_devices(ifindexes);
    describe();
    return true;
  }

  bool create_umem_and_sockets(bool zero_copy, std::string& error) {
    zero_copy_ = zero_copy;
    xsk_umem_config umem_config{};
    umem_config.fill_size = config_.xdp.ring_size;
    umem_config.comp_size = config_.xdp.ring_size;
    umem_config.frame_size = kFrameSize;
    umem_config.frame_headroom = 0;
    umem_config.flags = 0;
    const int r = xsk_umem__create(&umem_, area_, area_size_, &first_fill_, &first_comp_, &umem_config);
    if (r != 0) {
      umem_ = nullptr;
      error = umem_error(-r);
      return false;
    }
    free_frames_.clear();
    for (uint32_t i = config_.xdp.frames; i > 0; i--) free_frames_.push_back(static_cast<uint64_t>(i - 1) * kFrameSize);
    sockets_.clear();
    sockets_.reserve(static_cast<size_t>(devices_.size()) * kXdpQueuesPerDevice);
    for (unsigned i = 0; i < devices_.size(); i++) {
      Device& d = devices_[i];
      if (d.ifindex == 0) continue;
      if (!d.attached) {
        if (!device_mac(d.name, d.mac) || !program_.attach(i, d.ifindex, d.mode, error)) {
          if (error.empty()) error = "reading the MAC address of " + d.name + " failed";
          error = d.name + ": " + error;
          return false;
        }
        d.attached = true;
        d.queues = device_queues(d.name);
      }
      d.first_socket = static_cast<unsigned>(sockets_.size());
      for (unsigned q = 0; q < d.queues; q++)
        if (!open_socket(i, q, error)) return false;
    }
    fill_cap_ = sockets_.empty() ? 0 : config_.xdp.frames / (2 * static_cast<unsigned>(sockets_.size()));
    if (fill_cap_ > config_.xdp.ring_size) fill_cap_ = config_.xdp.ring_size;
    for (Socket& s : sockets_) refill(s);
    return true;
  }

  bool open_socket(unsigned device, unsigned queue, std::string& error) {
    sockets_.emplace_back();
    Socket& s = sockets_.back();
    s.device = device;
    s.queue = queue;
    xsk_socket_config sc{};
    sc.rx_size = config_.xdp.ring_size;
    sc.tx_size = config_.xdp.ring_size;
    sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    sc.bind_flags = XDP_USE_NEED_WAKEUP | (zero_copy_ ? XDP_ZEROCOPY : XDP_COPY);
    // The first socket takes over the UMEM's fill/completion rings (libxdp copies them into
    // s.fill and s.comp); every later one, on another device or queue, gets rings of its own.
    const int r = xsk_socket__create_shared(&s.xsk, devices_[device].name.c_str(), queue, umem_, &s.rx, &s.tx, &s.fill,
                                            &s.comp, &sc);
    if (r != 0) {
      s.xsk = nullptr;
      sockets_.pop_back();
      error = "AF_XDP socket on " + devices_[device].name + " queue " + std::to_string(queue) + ": " + std::strerror(-r);
      return false;
    }
    if (!program_.set_socket(device, queue, xsk_socket__fd(s.xsk))) {
      error = "adding the AF_XDP socket to the XSK map: " + std::string(std::strerror(errno));
      return false;
    }
    return true;
  }

  std::string umem_error(int err) const {
    std::string message = "registering the UMEM (" + std::to_string(area_size_ >> 10) + " KiB, --xdp-frames=" +
                          std::to_string(config_.xdp.frames) + "): " + std::strerror(err);
    rlimit limit{};
    if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < area_size_)
      message += "; the locked-memory limit (RLIMIT_MEMLOCK, ulimit -l) is " + std::to_string(limit.rlim_cur >> 10) +
                 " KiB and the UMEM is pinned against it without CAP_IPC_LOCK: lower --xdp-frames or raise the limit";
    return message;
  }

  // No kernel socket should take a port of the range: the XDP program would steal its packets.
  // ip_local_reserved_ports keeps the kernel from handing those ports out as ephemeral ports
  // (an explicit bind still can): the range is added to it, in this network namespace.
  void reserve_port_range() {
    const char* path = "/proc/sys/net/ipv4/ip_local_reserved_ports";
    const std::string range = std::to_string(config_.xdp.port_min) + "-" + std::to_string(config_.xdp.port_max);
    std::string current;
    std::ifstream in(path);
    std::getline(in, current);
    if (("," + current + ",").find("," + range + ",") != std::string::npos) return;
    std::ofstream out(path);
    out << (current.empty() ? range : current + "," + range) << "\n";
    out.flush();
    if (!out) reserve_note_ = "; could not add " + range + " to net.ipv4.ip_local_reserved_ports (reserve it by hand)";
  }

  void describe() {
    note_ = "af_xdp " + std::string(zero_copy_ ? "zero-copy" : "copy mode") + ", " +
            std::to_string(config_.xdp.frames) + " frames, UDP checksum " + (config_.xdp.udp_checksum ? "on" : "off") + ":";
    for (const Device& d : devices_) {
      note_ += " " + d.name;
      note_ += d.attached ? " (" + d.mode + " XDP, " + std::to_string(d.queues) + " queue" + (d.queues > 1 ? "s)" : ")")
                          : " (absent)";
    }
    note_ += reserve_note_;
  }

  // The kernel's own drops (no free frame in the fill ring, rx ring full), summed over the
  // sockets, and over the sockets of earlier builds (`base`).
  void read_kernel_drops(bool into_base) {
    uint64_t dropped = 0, ring_full = 0;
    for (const Socket& s : sockets_) {
      xdp_statistics stats{};
      socklen_t length = sizeof(stats);
      if (getsockopt(xsk_socket__fd(s.xsk), SOL_XDP, XDP_STATISTICS, &stats, &length) != 0) continue;
      dropped += stats.rx_dropped;
      ring_full += stats.rx_ring_full;
    }
    counters_.set(EngineCounter::xdp_rx_dropped, dropped_base_ + dropped);
    counters_.set(EngineCounter::xdp_rx_ring_full, ring_full_base_ + ring_full);
    if (!into_base) return;
    dropped_base_ += dropped;
    ring_full_base_ += ring_full;
  }

  void teardown() {
    read_kernel_drops(true);
    for (unsigned i = 0; i < devices_.size(); i++) {
      for (unsigned q = 0; q < kXdpQueuesPerDevice; q++) program_.clear_socket(i, q);
    }
    for (Socket& s : sockets_)
      if (s.xsk != nullptr) xsk_socket__delete(s.xsk);
    sockets_.clear();
    if (umem_ != nullptr) xsk_umem__delete(umem_);
    umem_ = nullptr;
  }

  // ---- maintenance (between batches) -------------------------------------------------------

  void maintain() {
    const uint64_t now = monotonic_ms();
    if (now >= next_neighbour_ms_ || neighbours_.resolving()) {
      neighbours_.refresh(now, kNeighbourBudget);
      next_neighbour_ms_ = now + kNeighbourRefreshMs;
    }
    if (now < next_device_check_ms_) return;
    next_device_check_ms_ = now + kDeviceCheckMs;
    read_kernel_drops(false);
    bool changed = device_lost_ || rebuild_failed_;
    for (Device& d : devices_) {
      const int ifindex = static_cast<int>(if_nametoindex(d.name.c_str()));
      if (ifindex == d.ifindex) continue;
      changed = true;
      d.ifindex = ifindex;
      d.attached = false;
    }
    if (!changed) return;
    device_lost_ = false;
    teardown();
    for (unsigned i = 0; i < devices_.size(); i++)
      if (!devices_[i].attached) program_.detach(i);
    std::string error;
    rebuild_failed_ = !build(error);
    if (rebuild_failed_) {
      // Retried at the next check; until then nothing is received.
      teardown();
      note_ = "af_xdp: rebuilding after a device change failed: " + error;
    }
  }

  // ---- packet path -------------------------------------------------------------------------

  // Waits for packets or the eventfd; false when there is nothing to do.
  bool wait(int timeout_ms) {
    pollfds_.clear();
    pollfds_.push_back({wake_fd_, POLLIN, 0});
    bool ready = false;
    for (Socket& s : sockets_) {
      pollfds_.push_back({xsk_socket__fd(s.xsk), POLLIN, 0});
      if (xsk_cons_nb_avail(&s.rx, 1) > 0) ready = true;
    }
    const bool backlog = ready;  // packets left from the last round: no window, no waiting
    if (backlog) timeout_ms = 0;
    // While frames wait for completion, or a next hop for the kernel, come back soon.
    if (timeout_ms > 1 && (frames_in_flight() || neighbours_.resolving())) timeout_ms = 1;
    const int n = ::poll(pollfds_.data(), pollfds_.size(), timeout_ms);
    if (n < 0) return false;
    const bool woken = pollfds_[0].revents & POLLIN;
    if (woken) {
      uint64_t value;
      [[maybe_unused]] const ssize_t drained = read(wake_fd_, &value, sizeof(value));
    }
    for (size_t i = 1; i < pollfds_.size(); i++) {
      if (pollfds_[i].revents & (POLLERR | POLLHUP | POLLNVAL)) device_lost_ = true;
      if (pollfds_[i].revents & POLLIN) ready = true;
    }
    // The window gathers packets; a command wake-up is served at once.
    if (ready && !backlog && !woken && config_.coalesce_us > 0) sleep_us(config_.coalesce_us);
    return ready;
  }

  bool frames_in_flight() const {
    for (const Socket& s : sockets_)
      if (s.tx_held > 0) return true;
    return false;
  }

  void receive(PacketSink& sink, Socket& s) {
    uint32_t index = 0;
    const uint32_t n = xsk_ring_cons__peek(&s.rx, kRxBatch, &index);
    if (n == 0) return;
    for (uint32_t i = 0; i < n; i++) {
      const xdp_desc* desc = xsk_ring_cons__rx_desc(&s.rx, index + i);
      handle(sink, s, desc->addr, desc->len);
    }
    xsk_ring_cons__release(&s.rx, n);
    s.rx_held -= n;
    refill(s);
  }

  void handle(PacketSink& sink, const Socket& in, uint64_t addr, uint32_t length) {
    uint8_t* frame = static_cast<uint8_t*>(xsk_umem__get_data(area_, addr));
    xdp::Datagram d;
    if (length > kFrameSize || xdp::parse_ipv4_udp(frame, length, d) != xdp::Parse::Ok) {
      drop(EngineCounter::drops_malformed, addr);
      return;
    }
    const uint64_t token = lookup(d.destination_ip, d.destination_port);
    if (token == kNoToken) {
      drop(EngineCounter::drops_stale, addr);
      return;
    }
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_port = htons(d.source_port);
    source.sin_addr.s_addr = d.source_ip;
    const PacketView packet{token, frame + d.payload_offset, d.payload_length, reinterpret_cast<const sockaddr*>(&source),
                            sizeof(source)};
    const SendTarget target = sink.on_packet(packet);
    if (target.handle < 0) {
      release(addr);
      return;
    }
    forward(sink, in, addr, frame, d, target);
  }

  uint64_t lookup(uint32_t address, uint16_t port) const {
    if (port < config_.xdp.port_min || port > config_.xdp.port_max) return kNoToken;
    for (size_t i = 0; i < addresses_.size(); i++)
      if (addresses_[i] == address) return tokens_[i][port - config_.xdp.port_min];
    return kNoToken;
  }

  void forward(PacketSink& sink, const Socket& in, uint64_t addr, uint8_t* frame, const xdp::Datagram& d,
               const SendTarget& target) {
    const Endpoint& to = *target.destination;
    const NextHop* hop = to.family() == AF_INET ? neighbours_.find(to.addr.v4.sin_addr.s_addr) : nullptr;
    if (hop == nullptr) {
      counters_.add(EngineCounter::drops_no_neighbour);
      send_failed(sink, target.token, EHOSTUNREACH, addr);
      return;
    }
    const Device& device = devices_[hop->device];
    if (!device.attached) {
      send_failed(sink, target.token, ENETDOWN, addr);
      return;
    }
    // The same queue number as the packet came in on when the egress device has it.
    const unsigned queue = in.queue < device.queues ? in.queue : 0;
    Socket& out = sockets_[device.first_socket + queue];
    uint32_t slot = 0;
    if (xsk_ring_prod__reserve(&out.tx, 1, &slot) != 1) {
      send_failed(sink, target.token, ENOBUFS, addr);
      return;
    }
    xdp::Route route;
    std::memcpy(route.destination_mac, hop->mac, 6);
    std::memcpy(route.source_mac, device.mac, 6);
    route.source_ip = addresses_[static_cast<unsigned>(target.handle) >> 16];
    route.destination_ip = to.addr.v4.sin_addr.s_addr;
    route.source_port = static_cast<uint16_t>(target.handle & 0xffff);
    route.destination_port = to.port();
    route.tos = d.tos;
    route.ip_id = ip_id_++;
    route.udp_checksum = config_.xdp.udp_checksum;
    const uint32_t start = d.payload_offset - xdp::kHeaders;
    xdp::write_ipv4_udp(frame + start, d.payload_length, route);
    xdp_desc* desc = xsk_ring_prod__tx_desc(&out.tx, slot);
    desc->addr = addr + start;
    desc->len = xdp::kHeaders + d.payload_length;
    desc->options = 0;
    out.tx_unsubmitted++;
    out.tx_held++;
  }

  void send_failed(PacketSink& sink, uint64_t token, int error, uint64_t addr) {
    counters_.add(EngineCounter::send_errors);
    sink.on_send_error(token, error);
    release(addr);
  }

  void drop(EngineCounter reason, uint64_t addr) {
    counters_.add(reason);
    counters_.add(EngineCounter::packets_dropped);
    release(addr);
  }

  void release(uint64_t addr) { free_frames_.push_back(xsk_umem__extract_addr(addr) & ~static_cast<uint64_t>(kFrameSize - 1)); }

  // Submits the batch and kicks the kernel if the ring asks for it. In copy mode one kick sends
  // a bounded number of frames (the kernel's TX budget), so kick again while it makes progress.
  void transmit(Socket& s) {
    if (s.tx_unsubmitted == 0) return;
    xsk_ring_prod__submit(&s.tx, s.tx_unsubmitted);
    s.tx_unsubmitted = 0;
    if (!xsk_ring_prod__needs_wakeup(&s.tx)) return;
    const int fd = xsk_socket__fd(s.xsk);
    for (unsigned kicks = 0; kicks < 64; kicks++) {
      const ssize_t r = sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      counters_.add(EngineCounter::send_syscalls);
      if (r < 0 && errno != EAGAIN && errno != EBUSY && errno != ENOBUFS) {
        if (errno == ENETDOWN || errno == ENXIO) device_lost_ = true;
        counters_.add(EngineCounter::send_errors);
        return;
      }
      if (*s.tx.consumer == *s.tx.producer) return;  // the kernel took every descriptor
      if (r < 0 && errno != EAGAIN) return;          // busy: the next round kicks again
    }
  }

  // Completed transmits back to the free stack; then every fill ring topped up.
  void reclaim() {
    for (Socket& s : sockets_) {
      uint32_t index = 0;
      const uint32_t n = xsk_ring_cons__peek(&s.comp, config_.xdp.ring_size, &index);
      for (uint32_t i = 0; i < n; i++) release(*xsk_ring_cons__comp_addr(&s.comp, index + i));
      if (n > 0) xsk_ring_cons__release(&s.comp, n);
      s.tx_held -= n < s.tx_held ? n : s.tx_held;
      if (s.tx_unsubmitted == 0 && s.tx_held > 0 && *s.tx.consumer != *s.tx.producer) transmit_kick(s);
    }
    for (Socket& s : sockets_) refill(s);
  }

  // Descriptors the kernel has not taken yet (its budget ran out in the last kick).
  void transmit_kick(Socket& s) {
    if (!xsk_ring_prod__needs_wakeup(&s.tx)) return;
    sendto(xsk_socket__fd(s.xsk), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    counters_.add(EngineCounter::send_syscalls);
  }

  void refill(Socket& s) {
    if (s.rx_held >= fill_cap_ || free_frames_.empty()) return;
    uint32_t want = fill_cap_ - s.rx_held;
    if (want > free_frames_.size()) want = static_cast<uint32_t>(free_frames_.size());
    // The kernel publishes how far it has read the fill ring only now and then, and reserve()
    // is all or nothing: ask for what the ring shows free, or a refill could add nothing.
    const uint32_t room = xsk_prod_nb_free(&s.fill, want);
    if (room < want) want = room;
    uint32_t index = 0;
    const uint32_t n = want == 0 ? 0 : xsk_ring_prod__reserve(&s.fill, want, &index);
    if (n == 0) return;
    for (uint32_t i = 0; i < n; i++) {
      *xsk_ring_prod__fill_addr(&s.fill, index + i) = free_frames_.back();
      free_frames_.pop_back();
    }
    xsk_ring_prod__submit(&s.fill, n);
    s.rx_held += n;
    if (free_frames_.empty()) counters_.add(EngineCounter::buffers_exhausted);
    if (xsk_ring_prod__needs_wakeup(&s.fill)) recvfrom(xsk_socket__fd(s.xsk), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }

  BackendConfig config_;
  EngineCounters& counters_;
  int wake_fd_;
  XdpProgram program_;
  NeighbourTable neighbours_;
  std::vector<Device> devices_;
  std::vector<Socket> sockets_;
  std::vector<uint32_t> addresses_;               // network byte order, port-pool order
  std::vector<std::vector<uint64_t>> tokens_;     // [address][port - port_min]
  uint32_t ports_per_address_ = 0;
  std::vector<uint64_t> detached_;
  std::vector<uint64_t> free_frames_;
  std::vector<pollfd> pollfds_;
  uint8_t* area_ = nullptr;
  size_t area_size_ = 0;
  xsk_umem* umem_ = nullptr;
  xsk_ring_prod first_fill_{};
  xsk_ring_cons first_comp_{};
  unsigned fill_cap_ = 0;
  bool zero_copy_ = false;
  bool device_lost_ = false;     // a kick said the device is gone: rebuild at the next check
  bool rebuild_failed_ = false;
  uint16_t ip_id_ = 0;
  uint64_t dropped_base_ = 0;
  uint64_t ring_full_base_ = 0;
  uint64_t next_neighbour_ms_ = 0;
  uint64_t next_device_check_ms_ = 0;
  std::string note_;
  std::string reserve_note_;
};

}  // namespace

bool xdp_backend_built() { return true; }

std::unique_ptr<Backend> make_xdp_backend(const BackendConfig& config, int wake_fd, std::string& error) {
  const XdpConfig& x = config.xdp;
  if (x.devices.empty()) {
    error = "af_xdp needs at least one --xdp-dev";
    return nullptr;
  }
  if (x.devices.size() > kXdpMaxDevices) {
    error = "af_xdp takes at most " + std::to_string(kXdpMaxDevices) + " devices";
    return nullptr;
  }
  for (const Endpoint& a : x.addresses)
    if (a.family() != AF_INET) {
      error = "af_xdp forwards IPv4 only; not an IPv4 address: " + a.address_string();
      return nullptr;
    }
  if (!power_of_two(x.ring_size) || x.ring_size < 64 || x.ring_size > 16384) {
    error = "--xdp-ring-size must be a power of two in 64..16384";
    return nullptr;
  }
  if (x.frames < 2 * x.devices.size() || x.frames > (1u << 20)) {
    error = "--xdp-frames is out of range";
    return nullptr;
  }
  std::unique_ptr<XdpBackend> backend(new XdpBackend(config, wake_fd));
  if (!backend->start(error)) return nullptr;
  return backend;
}

}  // namespace rtphub
