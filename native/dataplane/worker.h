// A worker thread: owns one backend (and so its sockets) and its StreamTable shard outright.
// The packet path runs entirely on this thread and takes no lock: the JS thread reaches the
// worker only through the command ring (plus an eventfd wake-up), and hears back through the
// event ring (plus one notification per batch).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "../channel/command.h"
#include "../channel/spsc_ring.h"
#include "../sessions/stream_table.h"
#include "backend.h"
#include "clock.h"

namespace rtphub {

struct WorkerConfig {
  uint64_t learning_window_ms = 3000;
  uint64_t idle_timeout_ms = 0;  // 0 = never report idle legs
};

// Socket tokens: which stream slot, which leg, which socket of the leg.
inline uint64_t make_token(uint32_t slot, unsigned side, SocketKind kind, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(slot) << 2) | (side << 1) |
         static_cast<unsigned>(kind);
}

class Worker final : public PacketSink {
 public:
  Worker(unsigned index, const WorkerConfig& config, int wake_fd, std::function<void()> notify);
  ~Worker() override;

  void set_backend(std::unique_ptr<Backend> backend) { backend_ = std::move(backend); }
  void start();
  void stop();  // joins; sockets still attached are closed with the backend

  // JS thread.
  bool post(Command& command);  // false when the ring is full (the command is left intact)
  void wake();
  bool take_event(Event& out) { return events_.pop(out); }
  StreamTable& table() { return table_; }
  const EngineCounters& counters() const { return counters_; }
  EngineCounters& counters_for_backend() { return counters_; }
  const char* backend_name() const { return backend_->name(); }

  // PacketSink (worker thread).
  void on_batch() override;
  SendTarget on_packet(const PacketView& packet) override;
  void on_oversize(uint64_t token) override;
  void on_send_error(uint64_t token, int error) override;
  void on_detached(uint64_t token) override;

 private:
  void run();
  void run_commands();
  void create(Command& command);
  void update(Command& command);
  void close_stream(Command& command);
  void export_stream(Command& command);
  void activate(Command& command);
  bool attach_leg(Stream& stream, uint32_t slot, unsigned side, LegSetup& setup);
  int attach_socket(Stream& stream, int& fd, const Endpoint* port, uint64_t token);
  void finish_close(uint32_t slot, Stream& stream);
  void apply_update(Stream& stream, uint32_t slot, unsigned side, LegSetup& setup);
  void learned(uint32_t slot, Stream& stream, unsigned side, SocketKind kind, const Endpoint& endpoint);
  void sweep_idle();
  void release_all_sockets();
  void emit(Event& event);
  void flush_events();
  Stream* live_stream(uint32_t slot, uint32_t generation);
  void drop(Leg& leg, LegCounter leg_reason, EngineCounter engine_reason);
  void receive_rtp(Leg& leg, const uint8_t* data);
  static void resume_reception(Leg& leg);

  unsigned index_;
  WorkerConfig config_;
  std::unique_ptr<Backend> backend_;
  int wake_fd_;
  std::function<void()> notify_;
  SpscRing<Command> commands_;
  SpscRing<Event> events_;
  std::vector<Event> pending_events_;  // worker only: events that did not fit the ring yet
  std::atomic<bool> stopping_{false};
  // Set by the JS thread when it writes the eventfd, cleared by the worker before it drains the
  // command ring: commands posted while a wake-up is pending need no write of their own.
  std::atomic<bool> wake_pending_{false};
  std::thread thread_;
  StreamTable table_;
  EngineCounters counters_;
  uint64_t now_ms_ = 0;
  uint64_t now_us_ = 0;  // the clock at the current batch, for jitter
  uint64_t next_sweep_ms_ = 0;
};

}  // namespace rtphub
