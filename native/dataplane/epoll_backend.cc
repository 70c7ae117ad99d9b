// The portable packet loop: one epoll set per worker over all its sockets. A wake-up (optionally
// stretched by the coalescing window) is followed by recvmmsg on every ready socket into one
// batch of buffers that spans sockets, then the packets are sent on from those same buffers
// with one sendmmsg per run of packets that leave through the same socket.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "backend.h"
#include "clock.h"

namespace rtphub {
namespace {

constexpr unsigned kMaxEvents = 256;
constexpr unsigned kBatch = 512;
constexpr unsigned kPerSocket = 8;

class EpollBackend final : public Backend {
 public:
  EpollBackend(const BackendConfig& config, int epoll_fd, int wake_fd)
      : config_(config), counters_(*config.counters), epoll_(epoll_fd), wake_fd_(wake_fd),
        pool_(new uint8_t[static_cast<size_t>(kBatch) * config.buffer_size]()) {}

  ~EpollBackend() override {
    for (int fd = 0; fd < static_cast<int>(tokens_.size()); fd++)
      if (attached_[fd]) close(fd);
    close(epoll_);
  }

  const char* name() const override { return "epoll"; }

  int attach(int fd, uint64_t token) override {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (static_cast<size_t>(fd) >= tokens_.size()) {
      tokens_.resize(fd + 1024, 0);
      attached_.resize(fd + 1024, false);
    }
    tokens_[fd] = token;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      const int err = errno;
      close(fd);
      return -err;
    }
    attached_[fd] = true;
    return fd;
  }

  void detach(int handle, uint64_t token) override {
    if (handle < 0 || static_cast<size_t>(handle) >= attached_.size() || !attached_[handle]) return;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, handle, nullptr);
    close(handle);
    attached_[handle] = false;
    detached_.push_back(token);
  }

  void poll(PacketSink& sink, int timeout_ms) override {
    if (!detached_.empty()) {
      for (uint64_t token : detached_) sink.on_detached(token);
      detached_.clear();
      timeout_ms = 0;
    }
    int n = epoll_wait(epoll_, events_, kMaxEvents, timeout_ms);
    if (n <= 0) return;
    counters_.add(EngineCounter::wakeups);
    if (config_.coalesce_us > 0 && static_cast<unsigned>(n) < kMaxEvents && !woken(n)) {
      sleep_us(config_.coalesce_us);
      const int more = epoll_wait(epoll_, events_, kMaxEvents, 0);
      if (more > 0) n = more;
    }
    sink.on_batch();
    used_ = 0;
    sends_ = 0;
    for (int i = 0; i < n; i++) {
      const int fd = events_[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t value;
        [[maybe_unused]] const ssize_t drained = read(wake_fd_, &value, sizeof(value));
        continue;
      }
      receive(sink, fd);
      if (used_ + kPerSocket > kBatch) flush_sends();
    }
    flush_sends();
    for (const auto& e : send_errors_) sink.on_send_error(e.token, e.error);
    send_errors_.clear();
  }

 private:
  // A wake-up from the command ring is served at once: the window is for packets, not commands.
  bool woken(int n) const {
    for (int i = 0; i < n; i++)
      if (events_[i].data.fd == wake_fd_) return true;
    return false;
  }

  struct SendError {
    uint64_t token;
    int error;
  };

  void receive(PacketSink& sink, int fd) {
    const unsigned room = kBatch - used_ < kPerSocket ? kBatch - used_ : kPerSocket;
    for (unsigned i = 0; i < room; i++) {
      const unsigned k = used_ + i;
      iov_[k] = {pool_.get() + static_cast<size_t>(k) * config_.buffer_size, config_.buffer_size};
      std::memset(&recv_[k].msg_hdr, 0, sizeof(msghdr));
      recv_[k].msg_hdr.msg_name = &sources_[k];
      recv_[k].msg_hdr.msg_namelen = sizeof(sources_[k]);
      recv_[k].msg_hdr.msg_iov = &iov_[k];
      recv_[k].msg_hdr.msg_iovlen = 1;
    }
    const int got = recvmmsg(fd, &recv_[used_], room, MSG_DONTWAIT, nullptr);
    counters_.add(EngineCounter::recv_syscalls);
    if (got <= 0) return;
    const uint64_t token = tokens_[fd];
    for (int i = 0; i < got; i++) route(sink, token, used_ + i);
    used_ += got;
  }

  void route(PacketSink& sink, uint64_t token, unsigned k) {
    const msghdr& hdr = recv_[k].msg_hdr;
    if (hdr.msg_flags & MSG_TRUNC) {
      sink.on_oversize(token);
      return;
    }
    const PacketView packet{token, static_cast<uint8_t*>(iov_[k].iov_base), recv_[k].msg_len,
                            reinterpret_cast<const sockaddr*>(&sources_[k]), hdr.msg_namelen};
    const SendTarget target = sink.on_packet(packet);
    if (target.handle < 0) return;
    mmsghdr& out = send_[sends_];
    std::memset(&out, 0, sizeof(out));
    send_iov_[sends_] = {packet.data, packet.length};
    destinations_[sends_] = *target.destination;
    out.msg_hdr.msg_name = &destinations_[sends_].addr;
    out.msg_hdr.msg_namelen = destinations_[sends_].length();
    out.msg_hdr.msg_iov = &send_iov_[sends_];
    out.msg_hdr.msg_iovlen = 1;
    send_handle_[sends_] = target.handle;
    send_token_[sends_] = target.token;
    sends_++;
  }

  // Sends the batch, one sendmmsg per run of packets leaving through the same socket.
  void flush_sends() {
    unsigned i = 0;
    while (i < sends_) {
      unsigned run = 1;
      while (i + run < sends_ && send_handle_[i + run] == send_handle_[i]) run++;
      send_run(i, run);
      i += run;
    }
    sends_ = 0;
    used_ = 0;
  }

  void send_run(unsigned first, unsigned count) {
    while (count > 0) {
      const int sent = sendmmsg(send_handle_[first], &send_[first], count, MSG_DONTWAIT);
      counters_.add(EngineCounter::send_syscalls);
      if (sent < 0) {
        counters_.add(EngineCounter::send_errors);
        send_errors_.push_back({send_token_[first], errno});
        first++;
        count--;
        continue;
      }
      first += sent;
      count -= sent;
    }
  }

  BackendConfig config_;
  EngineCounters& counters_;
  int epoll_;
  int wake_fd_;
  std::unique_ptr<uint8_t[]> pool_;
  std::vector<uint64_t> tokens_;  // by descriptor
  std::vector<bool> attached_;    // by descriptor
  std::vector<uint64_t> detached_;
  std::vector<SendError> send_errors_;  // reported after the batch, outside the send loop
  epoll_event events_[kMaxEvents];
  mmsghdr recv_[kBatch];
  iovec iov_[kBatch];
  sockaddr_in6 sources_[kBatch];
  mmsghdr send_[kBatch];
  iovec send_iov_[kBatch];
  Endpoint destinations_[kBatch];
  int send_handle_[kBatch];
  uint64_t send_token_[kBatch];
  unsigned used_ = 0;
  unsigned sends_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(const BackendConfig& config, int wake_fd, std::string& error) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return nullptr;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev) < 0) {
    error = std::string("epoll_ctl(eventfd): ") + std::strerror(errno);
    close(ep);
    return nullptr;
  }
  return std::unique_ptr<Backend>(new EpollBackend(config, ep, wake_fd));
}

}  // namespace rtphub
