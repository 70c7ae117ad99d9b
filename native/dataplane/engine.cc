// Engine: JS-thread bookkeeping around the workers.
#include "engine.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace rtphub {
namespace {

constexpr unsigned kSlotBits = 20;
constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;

uint32_t stream_id_of(unsigned shard, uint32_t slot) { return (static_cast<uint32_t>(shard) << kSlotBits) | slot; }

// Opens a non-blocking UDP socket bound to `local`. IP_FREEBIND lets a standby relay bind the
// shared address before it owns it. Returns the descriptor, or -errno.
int open_bound_socket(const Endpoint& local) {
  const int fd = socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const int one = 1;
  if (local.family() == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
  } else {
    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  }
  if (bind(fd, &local.addr.sa, local.length()) < 0) {
    const int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// Binds the RTP socket, and the RTCP socket on port+1 unless the leg is muxed. 0 or -errno.
int bind_pair(LegSetup& setup, uint16_t port) {
  Endpoint rtp = setup.state.local;
  rtp.set_port(port);
  const int rtp_fd = open_bound_socket(rtp);
  if (rtp_fd < 0) return rtp_fd;
  int rtcp_fd = -1;
  if (!setup.state.rtcp_mux) {
    Endpoint rtcp = rtp;
    rtcp.set_port(static_cast<uint16_t>(port + 1));
    rtcp_fd = open_bound_socket(rtcp);
    if (rtcp_fd < 0) {
      close(rtp_fd);
      return rtcp_fd;
    }
  }
  setup.rtp_fd = rtp_fd;
  setup.rtcp_fd = rtcp_fd;
  setup.state.local = rtp;
  return 0;
}

[[noreturn]] void throw_system(const char* what, int err) {
  throw EngineError(err == EMFILE || err == ENFILE ? ErrorCode::PortsExhausted : ErrorCode::System,
                    std::string(what) + ": " + std::strerror(err));
}

}  // namespace

Engine::Engine(const EngineConfig& config, std::function<void()> notify) : notify_(std::move(notify)) {
  if (config.interfaces.empty()) throw EngineError(ErrorCode::InvalidArgument, "at least one interface address is needed");
  if (config.port_min == 0 || config.port_max < config.port_min + 1)
    throw EngineError(ErrorCode::InvalidArgument, "the port range must hold at least one even/odd pair");
  for (const std::string& address : config.interfaces) {
    Endpoint e;
    if (!Endpoint::parse(address, 0, e)) throw EngineError(ErrorCode::InvalidArgument, "not an IP address: " + address);
    interfaces_.push_back(e);
    pools_.emplace_back(config.port_min, config.port_max);
  }
  if (pools_.front().pairs() == 0) throw EngineError(ErrorCode::InvalidArgument, "the port range holds no even/odd pair");
  start_workers(config);
}

Engine::~Engine() { shutdown(); }

void Engine::start_workers(const EngineConfig& config) {
  unsigned threads = config.threads != 0 ? config.threads : std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  if (threads > 64) throw EngineError(ErrorCode::InvalidArgument, "at most 64 worker threads");
  const bool want_uring = config.backend == "auto" || config.backend == "io_uring";
  socketless_ = config.backend == "af_xdp";
  if (!want_uring && config.backend != "epoll" && !socketless_)
    throw EngineError(ErrorCode::InvalidArgument, "unknown backend '" + config.backend + "' (io_uring, epoll, af_xdp or auto)");
  // A device queue delivers to the worker that owns its socket, whatever stream the packet is
  // for: until packets can be handed between workers, af_xdp runs one worker.
  if (socketless_) threads = 1;
  auto wake_notify = [this] {
    if (!notify_pending_.exchange(true)) notify_();
  };
  shards_.resize(threads);
  for (unsigned i = 0; i < threads; i++) {
    const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw_system("eventfd", errno);
    // The worker owns the counters the backend bumps, so the worker is made first.
    std::unique_ptr<Worker> worker(new Worker(i, config.worker, wake_fd, wake_notify));
    BackendConfig bc;
    bc.coalesce_us = config.coalesce_us;
    bc.max_sockets = config.max_sockets_per_worker;
    bc.counters = &worker->counters_for_backend();
    std::string error;
    std::unique_ptr<Backend> backend;
    if (socketless_) {
      bc.xdp = config.xdp;
      bc.xdp.addresses = interfaces_;
      bc.xdp.port_min = config.port_min;
      bc.xdp.port_max = config.port_max;
      backend = make_xdp_backend(bc, wake_fd, error);
      if (!backend) throw EngineError(ErrorCode::System, "af_xdp backend: " + error);
      backend_note_ = backend->note();
    }
    if (!backend && want_uring) backend = make_uring_backend(bc, wake_fd, error);
    if (!backend && config.backend == "io_uring") throw EngineError(ErrorCode::System, "io_uring backend: " + error);
    if (!backend && want_uring && backend_note_.empty()) backend_note_ = "io_uring unavailable (" + error + "), using epoll";
    if (!backend) backend = make_epoll_backend(bc, wake_fd, error);
    if (!backend) throw EngineError(ErrorCode::System, "epoll backend: " + error);
    worker->set_backend(std::move(backend));
    backend_name_ = worker->backend_name();
    shards_[i].worker = std::move(worker);
  }
  for (Shard& shard : shards_) shard.worker->start();
}

void Engine::check_open() const {
  if (closed_) throw EngineError(ErrorCode::Closed, "the relay is closed");
}

unsigned Engine::pick_shard() const {
  unsigned best = 0;
  for (unsigned i = 1; i < shards_.size(); i++)
    if (shards_[i].streams < shards_[best].streams) best = i;
  return best;
}

uint32_t Engine::take_slot(Shard& shard) {
  uint32_t slot;
  if (!shard.free_slots.empty()) {
    slot = shard.free_slots.back();
    shard.free_slots.pop_back();
  } else {
    slot = static_cast<uint32_t>(shard.slots.size());
    if (slot > kSlotMask || !shard.worker->table().ensure(slot))
      throw EngineError(ErrorCode::PortsExhausted, "Parallel session limit reached");
    shard.slots.emplace_back();
  }
  return slot;
}

int Engine::pool_for(const Endpoint& local) const {
  if (!local.known()) return 0;
  for (size_t i = 0; i < interfaces_.size(); i++)
    if (interfaces_[i].same_address(local)) return static_cast<int>(i);
  return -1;
}

// Reserves a port pair (the requested one, or the next free one) and binds its sockets.
void Engine::bind_leg(LegSetup& setup, int& pool_index, uint16_t& port) {
  pool_index = pool_for(setup.state.local);
  if (pool_index < 0)
    throw EngineError(ErrorCode::InvalidArgument, "not one of the relay's interface addresses: " + setup.state.local.address_string());
  PortPool& pool = pools_[pool_index];
  setup.state.local = interfaces_[pool_index];
  if (port != 0) {
    if (!pool.reserve(port))
      throw EngineError(ErrorCode::PortsExhausted, "port " + std::to_string(port) + " is taken or outside the port range");
    const int r = claim_pair(setup, port);
    if (r < 0) {
      pool.release(port);
      throw_system(("bind port " + std::to_string(port)).c_str(), -r);
    }
    return;
  }
  uint32_t scanned = 0;
  while (true) {
    const uint16_t candidate = pool.next_free(pool.cursor(), scanned);
    if (candidate == 0) throw EngineError(ErrorCode::PortsExhausted, "Ran out of ports");
    pool.reserve(candidate);
    const int r = claim_pair(setup, candidate);
    if (r == 0) {
      port = candidate;
      return;
    }
    pool.release(candidate);
    if (r != -EADDRINUSE) throw_system("bind", -r);
  }
}

// Binds the pair's sockets; a socketless backend has no sockets to bind, the pool is its table.
int Engine::claim_pair(LegSetup& setup, uint16_t port) {
  if (!socketless_) return bind_pair(setup, port);
  setup.state.local.set_port(port);
  return 0;
}

StreamAllocation Engine::launch(uint32_t request, std::unique_ptr<StreamSetup> setup) {
  check_open();
  const unsigned shard_index = pick_shard();
  Shard& shard = shards_[shard_index];
  const uint32_t slot_index = take_slot(shard);
  Slot& slot = shard.slots[slot_index];
  unsigned bound = 0;
  try {
    for (; bound < 2; bound++) {
      slot.ports[bound] = setup->legs[bound].state.local.port();  // 0: any free pair
      bind_leg(setup->legs[bound], slot.pools[bound], slot.ports[bound]);
    }
  } catch (...) {
    for (unsigned side = 0; side < bound; side++) pools_[slot.pools[side]].release(slot.ports[side]);
    release_descriptors(*setup);
    slot = Slot{slot.generation};
    shard.free_slots.push_back(slot_index);
    throw;
  }
  slot.generation++;
  slot.live = true;
  slot.closing = false;
  for (unsigned side = 0; side < 2; side++) slot.has_rtcp[side] = setup->legs[side].rtcp_fd >= 0;
  shard.streams++;
  live_streams_++;
  StreamAllocation allocation;
  allocation.id = stream_id_of(shard_index, slot_index);
  for (unsigned side = 0; side < 2; side++) {
    allocation.legs[side].local = setup->legs[side].state.local;
    allocation.legs[side].rtcp_mux = setup->legs[side].state.rtcp_mux;
  }
  Command command;
  command.type = CommandType::Create;
  command.request = request;
  command.slot = slot_index;
  command.generation = slot.generation;
  command.setup = std::move(setup);
  send(shard_index, command);
  return allocation;
}

StreamAllocation Engine::create(uint32_t request, LegRequest (&legs)[2], bool standby) {
  std::unique_ptr<StreamSetup> setup(new StreamSetup);
  setup->standby = standby;
  for (unsigned side = 0; side < 2; side++) {
    LegSetup& leg = setup->legs[side];
    leg.state = legs[side].state;
    leg.state.rtp.remote = leg.state.rtp.signalled;
    leg.state.rtcp.remote = leg.state.rtcp.signalled;
    leg.state.rtp.state = leg.state.rtcp.state = LatchState::Unlearned;
  }
  return launch(request, std::move(setup));
}

StreamAllocation Engine::import_record(uint32_t request, const uint8_t* data, size_t length, bool standby) {
  StreamRecord record;
  std::string error;
  if (!decode_record(data, length, record, error)) throw EngineError(ErrorCode::RecordFormat, error);
  std::unique_ptr<StreamSetup> setup(new StreamSetup);
  setup->standby = standby;
  for (unsigned side = 0; side < 2; side++) {
    LegSetup& leg = setup->legs[side];
    leg.state = record.legs[side].state;
    leg.has_counters = true;
    std::memcpy(leg.counters, record.legs[side].counters, sizeof(leg.counters));
  }
  // The record names the exact ports: launch reserves those instead of taking new ones.
  return launch(request, std::move(setup));
}

void Engine::send(unsigned shard_index, Command& command) {
  Shard& shard = shards_[shard_index];
  flush_backlog(shard);
  if (!shard.backlog.empty() || !shard.worker->post(command)) shard.backlog.push_back(std::move(command));
  shard.worker->wake();
}

void Engine::flush_backlog(Shard& shard) {
  while (!shard.backlog.empty() && shard.worker->post(shard.backlog.front())) shard.backlog.pop_front();
}

Engine::Slot& Engine::slot_of(uint32_t stream_id, unsigned& shard, uint32_t& slot) {
  check_open();
  shard = stream_id >> kSlotBits;
  slot = stream_id & kSlotMask;
  if (shard >= shards_.size() || slot >= shards_[shard].slots.size() || !shards_[shard].slots[slot].live ||
      shards_[shard].slots[slot].closing)
    throw EngineError(ErrorCode::NotFound, "no such stream: " + std::to_string(stream_id));
  return shards_[shard].slots[slot];
}

void Engine::update(uint32_t request, uint32_t stream_id, LegRequest (&legs)[2]) {
  unsigned shard_index;
  uint32_t slot_index;
  Slot& slot = slot_of(stream_id, shard_index, slot_index);
  std::unique_ptr<StreamSetup> setup(new StreamSetup);
  for (unsigned side = 0; side < 2; side++) {
    LegSetup& leg = setup->legs[side];
    leg.state = legs[side].state;
    leg.fields = legs[side].fields;
    // Turning rtcp-mux off needs the RTCP socket, on the odd port the pair already reserves. A
    // leg keeps that socket when mux is switched on, so it is opened at most once. A socketless
    // backend (af_xdp) has the port pair in its table already.
    if (!socketless_ && (leg.fields & kFieldRtcpMux) && !leg.state.rtcp_mux && !slot.has_rtcp[side]) {
      Endpoint rtcp = interfaces_[slot.pools[side]];
      rtcp.set_port(static_cast<uint16_t>(slot.ports[side] + 1));
      const int fd = open_bound_socket(rtcp);
      if (fd < 0 && fd != -EADDRINUSE) {
        release_descriptors(*setup);
        throw_system("bind RTCP port", -fd);
      }
      leg.rtcp_fd = fd;  // EADDRINUSE: bound by someone else meanwhile; the leg goes on without
    }
  }
  for (unsigned side = 0; side < 2; side++) {
    if (setup->legs[side].rtcp_fd >= 0) slot.has_rtcp[side] = true;
  }
  Command command;
  command.type = CommandType::Update;
  command.request = request;
  command.slot = slot_index;
  command.generation = slot.generation;
  command.setup = std::move(setup);
  send(shard_index, command);
}

void Engine::close_stream(uint32_t request, uint32_t stream_id) {
  unsigned shard_index;
  uint32_t slot_index;
  Slot& slot = slot_of(stream_id, shard_index, slot_index);
  slot.closing = true;
  Command command;
  command.type = CommandType::Close;
  command.request = request;
  command.slot = slot_index;
  command.generation = slot.generation;
  send(shard_index, command);
}

void Engine::export_stream(uint32_t request, uint32_t stream_id) {
  unsigned shard_index;
  uint32_t slot_index;
  Slot& slot = slot_of(stream_id, shard_index, slot_index);
  Command command;
  command.type = CommandType::Export;
  command.request = request;
  command.slot = slot_index;
  command.generation = slot.generation;
  send(shard_index, command);
}

void Engine::activate(uint32_t request, uint32_t stream_id, bool standby) {
  check_open();
  if (stream_id != kAllStreams) {
    unsigned shard_index;
    uint32_t slot_index;
    Slot& slot = slot_of(stream_id, shard_index, slot_index);
    Command command;
    command.type = CommandType::Activate;
    command.request = request;
    command.slot = slot_index;
    command.generation = slot.generation;
    command.standby = standby;
    send(shard_index, command);
    return;
  }
  for (unsigned i = 0; i < shards_.size(); i++) {
    Command command;
    command.type = CommandType::Activate;
    command.request = request;
    command.slot = kAllStreams;
    command.standby = standby;
    send(i, command);
  }
}

bool Engine::read_leg_counters(uint32_t stream_id, unsigned side, uint64_t* out) const {
  const unsigned shard_index = stream_id >> kSlotBits;
  const uint32_t slot_index = stream_id & kSlotMask;
  if (closed_ || side > 1 || shard_index >= shards_.size() || slot_index >= shards_[shard_index].slots.size()) return false;
  const Slot& slot = shards_[shard_index].slots[slot_index];
  const Stream* stream = shards_[shard_index].worker->table().at(slot_index);
  if (!slot.live || stream == nullptr) return false;
  const LegCounters& counters = stream->legs[side].counters;
  for (size_t i = 0; i < kLegCounterCount; i++) out[i] = counters.v[i].load(std::memory_order_relaxed);
  // The worker writes the generation before it fills the slot: a mismatch means not started yet.
  if (stream->generation.load(std::memory_order_acquire) != slot.generation)
    for (size_t i = 0; i < kLegCounterCount; i++) out[i] = 0;
  return true;
}

void Engine::read_engine_counters(uint64_t* out) const {
  for (size_t i = 0; i < kEngineCounterCount; i++) out[i] = 0;
  for (const Shard& shard : shards_)
    for (size_t i = 0; i < kEngineCounterCount; i++) out[i] += shard.worker->counters().v[i].load(std::memory_order_relaxed);
}

uint32_t Engine::ports_in_use() const {
  uint32_t n = 0;
  for (const PortPool& pool : pools_) n += pool.in_use();
  return n * 2;
}

uint32_t Engine::ports_total() const {
  uint32_t n = 0;
  for (const PortPool& pool : pools_) n += pool.pairs();
  return n * 2;
}

void Engine::release_slot(Shard& shard, uint32_t slot_index) {
  Slot& slot = shard.slots[slot_index];
  for (unsigned side = 0; side < 2; side++)
    if (slot.pools[side] >= 0) pools_[slot.pools[side]].release(slot.ports[side]);
  slot.live = false;
  slot.closing = false;
  slot.pools[0] = slot.pools[1] = -1;
  slot.ports[0] = slot.ports[1] = 0;
  slot.has_rtcp[0] = slot.has_rtcp[1] = false;
  shard.free_slots.push_back(slot_index);
  shard.streams--;
  live_streams_--;
}

void Engine::drain(const std::function<void(uint32_t, Event&)>& deliver) {
  notify_pending_.store(false);
  for (unsigned i = 0; i < shards_.size(); i++) {
    Shard& shard = shards_[i];
    Event event;
    while (shard.worker->take_event(event)) {
      const bool current = event.slot < shard.slots.size() && shard.slots[event.slot].generation == event.generation;
      if (event.type == EventType::Closed && current && shard.slots[event.slot].live) release_slot(shard, event.slot);
      deliver(event.slot == kAllStreams ? kAllStreams : stream_id_of(i, event.slot), event);
      event = Event{};
    }
    if (!shard.backlog.empty()) {
      flush_backlog(shard);
      shard.worker->wake();
    }
  }
}

void Engine::shutdown() {
  if (closed_) return;
  closed_ = true;
  for (Shard& shard : shards_) {
    shard.worker->stop();
    for (Command& command : shard.backlog)
      if (command.setup) release_descriptors(*command.setup);
    shard.backlog.clear();
  }
  shards_.clear();
}

}  // namespace rtphub
