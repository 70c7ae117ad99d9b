// The engine as the JS thread sees it: it starts the workers, owns the port pools, opens and
// binds sockets (so errors such as port exhaustion are reported synchronously), hands streams to
// workers as commands and turns the workers' events into bookkeeping (ports return to the pool
// only when the worker reports the sockets closed). Everything here runs on the JS thread except
// the notify callback, which workers call.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../snapshot/record.h"
#include "engine_error.h"
#include "port_pool.h"
#include "worker.h"

namespace rtphub {

struct EngineConfig {
  std::vector<std::string> interfaces{"127.0.0.1"};
  uint16_t port_min = 30000;
  uint16_t port_max = 40000;
  unsigned threads = 0;            // 0 = number of CPUs
  std::string backend = "auto";    // auto | io_uring | epoll | af_xdp
  XdpConfig xdp;                   // af_xdp: devices, UMEM and ring sizes (addresses and ports are filled in)
  unsigned coalesce_us = 0;
  unsigned max_sockets_per_worker = 0;
  WorkerConfig worker;
};

// What the caller asks for one leg. `local` carries the address (port 0 = from the pool).
struct LegRequest {
  LegState state;
  uint32_t fields = kFieldAll;  // update only
};

struct LegAllocation {
  Endpoint local;
  bool rtcp_mux = false;
};

struct StreamAllocation {
  uint32_t id = 0;
  LegAllocation legs[2];
};

class Engine {
 public:
  Engine(const EngineConfig& config, std::function<void()> notify);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& backend_name() const { return backend_name_; }
  const std::string& backend_note() const { return backend_note_; }
  unsigned threads() const { return static_cast<unsigned>(shards_.size()); }

  StreamAllocation create(uint32_t request, LegRequest (&legs)[2], bool standby);
  StreamAllocation import_record(uint32_t request, const uint8_t* data, size_t length, bool standby);
  void update(uint32_t request, uint32_t stream_id, LegRequest (&legs)[2]);
  void close_stream(uint32_t request, uint32_t stream_id);
  void export_stream(uint32_t request, uint32_t stream_id);
  // Starts (standby false) or stops (true) forwarding; kAllStreams: every stream, one Done per worker.
  void activate(uint32_t request, uint32_t stream_id, bool standby);
  bool read_leg_counters(uint32_t stream_id, unsigned side, uint64_t* out) const;
  void read_engine_counters(uint64_t* out) const;
  uint32_t ports_in_use() const;
  uint32_t ports_total() const;
  uint32_t live_streams() const { return live_streams_; }

  // Drains every worker's events; `deliver` sees each with the engine-wide stream id.
  void drain(const std::function<void(uint32_t stream_id, Event&)>& deliver);
  void shutdown();

 private:
  struct Slot {
    uint32_t generation = 0;
    bool live = false;
    bool closing = false;
    int pools[2] = {-1, -1};
    uint16_t ports[2] = {0, 0};
    bool has_rtcp[2] = {false, false};  // the leg holds a socket on its odd port
  };
  struct Shard {
    std::unique_ptr<Worker> worker;
    std::vector<Slot> slots;
    std::vector<uint32_t> free_slots;
    std::deque<Command> backlog;  // commands that did not fit the ring yet
    uint32_t streams = 0;
  };

  void start_workers(const EngineConfig& config);
  unsigned pick_shard() const;
  uint32_t take_slot(Shard& shard);
  int pool_for(const Endpoint& local) const;
  void bind_leg(LegSetup& setup, int& pool, uint16_t& port);
  int claim_pair(LegSetup& setup, uint16_t port);
  StreamAllocation launch(uint32_t request, std::unique_ptr<StreamSetup> setup);
  void send(unsigned shard, Command& command);
  void flush_backlog(Shard& shard);
  Slot& slot_of(uint32_t stream_id, unsigned& shard, uint32_t& slot);
  void release_slot(Shard& shard, uint32_t slot);
  void check_open() const;

  std::function<void()> notify_;
  std::atomic<bool> notify_pending_{false};
  std::vector<Endpoint> interfaces_;
  std::vector<PortPool> pools_;
  std::vector<Shard> shards_;
  std::string backend_name_;
  std::string backend_note_;
  uint32_t live_streams_ = 0;
  bool closed_ = false;
  bool socketless_ = false;  // af_xdp: a port is an entry in the backend's table, not a socket
};

}  // namespace rtphub
