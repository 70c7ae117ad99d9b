// The fast packet loop: one io_uring per worker.
//  - Every socket is a registered (direct) descriptor in the ring's file table: the worker
//    registers the socket and closes the process descriptor, so live sockets do not count
//    against the process's open-file limit (each ring holds up to that limit on its own).
//  - Each socket has one multishot recvmsg armed, receiving into a shared provided-buffer ring.
//  - A received packet is sent on with a sendmsg SQE pointing into the same buffer; the buffer
//    goes back to the ring when the send completes. No copy, no allocation.
//  - One io_uring_enter both submits the batch of sends and waits for the next completions;
//    the coalescing window lets that wait gather many packets across sockets per wake-up.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "backend.h"

namespace rtphub {
namespace {

enum Op : uint64_t { kOpRecv = 1, kOpSend = 2, kOpWake = 3, kOpCancel = 4 };
constexpr unsigned kOpShift = 56;
constexpr unsigned kRingEntries = 4096;
constexpr unsigned kCoalesceTarget = 256;
constexpr uint16_t kBufferGroup = 0;

uint64_t user_data(Op op, uint64_t value) { return (static_cast<uint64_t>(op) << kOpShift) | value; }

struct SendSlot {
  msghdr message;
  iovec vector;
  Endpoint destination;
  uint64_t token;
};

struct SocketEntry {
  uint64_t token = 0;
  bool in_use = false;
  bool armed = false;
  bool detaching = false;
};

class UringBackend final : public Backend {
 public:
  UringBackend(const BackendConfig& config, int wake_fd) : config_(config), counters_(*config.counters), wake_fd_(wake_fd) {}

  ~UringBackend() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (buffer_ring_ != nullptr) munmap(buffer_ring_, buffer_ring_bytes_);
    if (buffers_ != nullptr) munmap(buffers_, buffers_bytes_);
  }

  bool init(std::string& error) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    int r = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    if (r == -EINVAL) {
      params = io_uring_params{};
      params.flags = IORING_SETUP_R_DISABLED;
      r = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    }
    if (r < 0) return fail(error, "io_uring_queue_init", r);
    ring_ready_ = true;
    if (!init_files(error) || !init_buffers(error)) return false;
    std::memset(&recv_template_, 0, sizeof(recv_template_));
    recv_template_.msg_namelen = sizeof(sockaddr_in6);
    send_slots_.reset(new SendSlot[config_.buffers]);
    return true;
  }

  const char* name() const override { return "io_uring"; }

  int attach(int fd, uint64_t token) override {
    enable_on_worker();
    if (free_slots_.empty()) {
      close(fd);
      return -EMFILE;
    }
    const int slot = free_slots_.back();
    const int r = io_uring_register_files_update(&ring_, slot, &fd, 1);
    close(fd);
    if (r < 0) return r;
    free_slots_.pop_back();
    sockets_[slot] = SocketEntry{token, true, false, false};
    arm(slot);
    return slot;
  }

  void detach(int handle, uint64_t token) override {
    if (handle < 0 || static_cast<size_t>(handle) >= sockets_.size()) return;
    SocketEntry& entry = sockets_[handle];
    if (!entry.in_use || entry.token != token || entry.detaching) return;
    entry.detaching = true;
    if (!entry.armed) {
      release(handle);
      return;
    }
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, user_data(kOpRecv, handle), 0);
    io_uring_sqe_set_data64(sqe, user_data(kOpCancel, 0));
  }

  void poll(PacketSink& sink, int timeout_ms) override {
    enable_on_worker();
    if (!detached_.empty()) {
      for (uint64_t token : detached_) sink.on_detached(token);
      detached_.clear();
      timeout_ms = 0;
    }
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec wait{timeout_ms / 1000, static_cast<long long>(timeout_ms % 1000) * 1000000};
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout_ms < 0 ? nullptr : &wait, nullptr);
    if (io_uring_cq_ready(&ring_) == 0) return;
    counters_.add(EngineCounter::wakeups);
    if (config_.coalesce_us > 0 && io_uring_cq_ready(&ring_) < kCoalesceTarget && !commands_waiting()) {
      __kernel_timespec window{0, static_cast<long long>(config_.coalesce_us) * 1000};
      io_uring_submit_and_wait_timeout(&ring_, &cqe, kCoalesceTarget, &window, nullptr);
    }
    sink.on_batch();
    drain(sink);
    for (int slot : rearm_) arm(slot);
    rearm_.clear();
  }

 private:
  static bool fail(std::string& error, const char* what, int r) {
    error = std::string(what) + ": " + std::strerror(-r);
    return false;
  }

  bool init_files(std::string& error) {
    unsigned count = config_.max_sockets;
    if (count == 0) {
      rlimit limit{};
      getrlimit(RLIMIT_NOFILE, &limit);
      count = limit.rlim_cur > 65536 ? 65536 : static_cast<unsigned>(limit.rlim_cur);
    }
    const int r = io_uring_register_files_sparse(&ring_, count);
    if (r < 0) return fail(error, "io_uring_register_files_sparse", r);
    sockets_.resize(count);
    free_slots_.reserve(count);
    for (unsigned i = count; i > 0; i--) free_slots_.push_back(static_cast<int>(i - 1));
    return true;
  }

  bool init_buffers(std::string& error) {
    buffers_bytes_ = static_cast<size_t>(config_.buffers) * config_.buffer_size;
    // Pre-faulted: the pool is a fixed cost of the worker, paid at start, not as traffic grows.
    buffers_ = static_cast<uint8_t*>(
        mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    buffer_ring_bytes_ = static_cast<size_t>(config_.buffers) * sizeof(io_uring_buf);
    void* ring_mem = mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffers_ == MAP_FAILED || ring_mem == MAP_FAILED) {
      buffers_ = nullptr;
      error = "mmap of receive buffers failed";
      return false;
    }
    buffer_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
    io_uring_buf_ring_init(buffer_ring_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(ring_mem);
    reg.ring_entries = config_.buffers;
    reg.bgid = kBufferGroup;
    const int r = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (r < 0) return fail(error, "io_uring_register_buf_ring", r);
    mask_ = io_uring_buf_ring_mask(config_.buffers);
    for (unsigned id = 0; id < config_.buffers; id++) recycle(static_cast<uint16_t>(id));
    publish_buffers();
    return true;
  }

  // The ring is created disabled on the JS thread and enabled by its worker, which thereby
  // becomes its single issuer. (liburing 2.3 declares io_uring_enable_rings but does not export
  // it, hence the raw system call.)
  void enable_on_worker() {
    if (enabled_) return;
    enabled_ = true;
    syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    arm_wake();
  }

  // A wake-up from the command ring is served at once: the window is for packets, not commands.
  bool commands_waiting() {
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if ((io_uring_cqe_get_data64(cqe) >> kOpShift) == kOpWake) return true;
    }
    return false;
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void arm(int slot) {
    SocketEntry& entry = sockets_[slot];
    if (!entry.in_use || entry.detaching) return;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recvmsg_multishot(sqe, slot, &recv_template_, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, user_data(kOpRecv, slot));
    entry.armed = true;
  }

  void arm_wake() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
    io_uring_sqe_set_data64(sqe, user_data(kOpWake, 0));
  }

  void release(int slot) {
    const int none = -1;
    io_uring_register_files_update(&ring_, slot, &none, 1);
    detached_.push_back(sockets_[slot].token);
    sockets_[slot] = SocketEntry{};
    free_slots_.push_back(slot);
  }

  void recycle(uint16_t id) {
    io_uring_buf_ring_add(buffer_ring_, buffers_ + static_cast<size_t>(id) * config_.buffer_size, config_.buffer_size, id,
                          mask_, returned_++);
  }

  void publish_buffers() {
    if (returned_ == 0) return;
    io_uring_buf_ring_advance(buffer_ring_, returned_);
    returned_ = 0;
  }

  void drain(PacketSink& sink) {
    while (io_uring_cq_ready(&ring_) > 0) {
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        complete(sink, cqe);
        seen++;
      }
      io_uring_cq_advance(&ring_, seen);
      publish_buffers();
    }
  }

  void complete(PacketSink& sink, const io_uring_cqe* cqe) {
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const uint64_t value = data & ((1ull << kOpShift) - 1);
    switch (static_cast<Op>(data >> kOpShift)) {
      case kOpRecv: return on_receive(sink, static_cast<int>(value), cqe);
      case kOpSend: return on_sent(sink, static_cast<uint16_t>(value), cqe->res);
      case kOpWake: return arm_wake();
      case kOpCancel: return;
    }
  }

  void on_receive(PacketSink& sink, int slot, const io_uring_cqe* cqe) {
    SocketEntry& entry = sockets_[slot];
    if (cqe->flags & IORING_CQE_F_BUFFER) forward(sink, entry, static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT), cqe->res);
    if (cqe->flags & IORING_CQE_F_MORE) return;
    entry.armed = false;
    if (entry.detaching) {
      release(slot);
      return;
    }
    if (cqe->res == -ENOBUFS) counters_.add(EngineCounter::buffers_exhausted);
    counters_.add(EngineCounter::recv_rearms);
    rearm_.push_back(slot);
  }

  void forward(PacketSink& sink, const SocketEntry& entry, uint16_t id, int length) {
    uint8_t* buffer = buffers_ + static_cast<size_t>(id) * config_.buffer_size;
    io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buffer, length, &recv_template_);
    if (out == nullptr || entry.detaching) {
      recycle(id);
      return;
    }
    if (out->flags & MSG_TRUNC) {
      sink.on_oversize(entry.token);
      recycle(id);
      return;
    }
    const PacketView packet{entry.token, static_cast<uint8_t*>(io_uring_recvmsg_payload(out, &recv_template_)),
                            io_uring_recvmsg_payload_length(out, length, &recv_template_),
                            static_cast<const sockaddr*>(io_uring_recvmsg_name(out)), out->namelen};
    const SendTarget target = sink.on_packet(packet);
    if (target.handle < 0) {
      recycle(id);
      return;
    }
    SendSlot& slot = send_slots_[id];
    slot.destination = *target.destination;
    slot.token = target.token;
    slot.vector = {packet.data, packet.length};
    std::memset(&slot.message, 0, sizeof(slot.message));
    slot.message.msg_name = &slot.destination.addr;
    slot.message.msg_namelen = slot.destination.length();
    slot.message.msg_iov = &slot.vector;
    slot.message.msg_iovlen = 1;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_sendmsg(sqe, target.handle, &slot.message, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, user_data(kOpSend, id));
  }

  void on_sent(PacketSink& sink, uint16_t id, int result) {
    if (result < 0) {
      counters_.add(EngineCounter::send_errors);
      sink.on_send_error(send_slots_[id].token, -result);
    }
    recycle(id);
  }

  BackendConfig config_;
  EngineCounters& counters_;
  int wake_fd_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool enabled_ = false;
  uint8_t* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  size_t buffer_ring_bytes_ = 0;
  int mask_ = 0;
  unsigned returned_ = 0;  // buffers recycled since the last publish
  msghdr recv_template_;
  uint64_t wake_value_ = 0;
  std::unique_ptr<SendSlot[]> send_slots_;  // by buffer id: one send in flight per buffer
  std::vector<SocketEntry> sockets_;        // by registered-descriptor slot
  std::vector<int> free_slots_;
  std::vector<int> rearm_;
  std::vector<uint64_t> detached_;
};

}  // namespace

bool uring_backend_built() { return true; }

std::unique_ptr<Backend> make_uring_backend(const BackendConfig& config, int wake_fd, std::string& error) {
  std::unique_ptr<UringBackend> backend(new UringBackend(config, wake_fd));
  if (!backend->init(error)) return nullptr;
  return backend;
}

}  // namespace rtphub
