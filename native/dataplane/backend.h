// The packet loop interface. A worker owns one Backend; the backend owns the worker's sockets
// once attached, waits for packets across all of them at once, hands each received packet to
// the worker (the PacketSink) and sends it on from the same buffer to where the sink says.
// Implementations: io_uring (multishot receive into a provided-buffer ring, batched sends) and
// epoll (epoll_wait, recvmmsg, sendmmsg), and AF_XDP, which is socketless: it maps the
// destination address and port to the token itself (attach_port), so a port costs no descriptor,
// and the session table stays untouched.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../sessions/counters.h"
#include "../sessions/endpoint.h"

namespace rtphub {

struct PacketView {
  uint64_t token;   // what the socket was attached with
  uint8_t* data;
  uint32_t length;
  const sockaddr* source;
  socklen_t source_length;
};

struct SendTarget {
  int handle = -1;                 // backend handle of the socket to send from; < 0 drops
  uint64_t token = 0;              // that socket's token, for send-error accounting
  const Endpoint* destination = nullptr;
};

class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // Called once per wake-up before packets are delivered (the sink reads the clock here).
  virtual void on_batch() = 0;
  virtual SendTarget on_packet(const PacketView& packet) = 0;
  virtual void on_oversize(uint64_t token) = 0;
  virtual void on_send_error(uint64_t token, int error) = 0;
  // The socket attached under `token` is closed and its port free again.
  virtual void on_detached(uint64_t token) = 0;
};

// AF_XDP only: which devices to take packets from and what to take (see native/bpf/).
struct XdpConfig {
  std::vector<std::string> devices;
  std::vector<Endpoint> addresses;  // the relay's interface addresses, in port-pool order
  uint16_t port_min = 0;
  uint16_t port_max = 0;
  unsigned frames = 2048;      // UMEM frames per worker, 2 KiB each (locked memory)
  unsigned ring_size = 1024;   // rx, tx, fill and completion ring entries (power of two)
  bool udp_checksum = true;    // false: IPv4 UDP checksum 0 on transmit
};

struct BackendConfig {
  unsigned coalesce_us = 0;   // gather packets this long after a wake-up
  unsigned buffers = 4096;    // receive buffers per worker (power of two): bursts while descheduled
  unsigned buffer_size = 2048;
  unsigned max_sockets = 0;   // io_uring: registered descriptor slots (0 = from the open-file limit)
  EngineCounters* counters = nullptr;
  XdpConfig xdp;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // What the backend chose at start (modes, devices), for the start-up report; may be empty.
  virtual std::string note() const { return std::string(); }
  // A socketless backend (AF_XDP) takes a local address and port instead of a bound socket.
  virtual bool socketless() const { return false; }
  // Socketless backends: starts delivering packets to `local`; returns a handle, or -errno.
  virtual int attach_port(const Endpoint&, uint64_t) { return -EOPNOTSUPP; }
  // Takes ownership of a bound, non-blocking socket; returns its handle, or -errno.
  virtual int attach(int fd, uint64_t token) = 0;
  // Stops receiving on the socket and closes it; on_detached(token) follows (maybe later).
  virtual void detach(int handle, uint64_t token) = 0;
  // Waits up to timeout_ms for packets or a wake-up, then delivers and forwards what arrived.
  virtual void poll(PacketSink& sink, int timeout_ms) = 0;
};

// `wake_fd` is an eventfd the JS thread writes to; the backend watches it and drains it.
std::unique_ptr<Backend> make_epoll_backend(const BackendConfig& config, int wake_fd, std::string& error);
std::unique_ptr<Backend> make_uring_backend(const BackendConfig& config, int wake_fd, std::string& error);
bool uring_backend_built();
std::unique_ptr<Backend> make_xdp_backend(const BackendConfig& config, int wake_fd, std::string& error);
bool xdp_backend_built();

}  // namespace rtphub
