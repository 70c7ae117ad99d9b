// Worker thread: the packet path (on_packet) and the command handlers.
#include "worker.h"

#include <sys/prctl.h>
#include <unistd.h>

#include "../sessions/latching.h"
#include "../snapshot/record.h"

namespace rtphub {

namespace {

constexpr size_t kCommandRing = 1u << 14;
constexpr size_t kEventRing = 1u << 14;
constexpr uint64_t kSweepIntervalMs = 500;

uint32_t token_slot(uint64_t token) { return static_cast<uint32_t>(token & 0xffffffffu) >> 2; }
unsigned token_side(uint64_t token) { return (token >> 1) & 1; }
SocketKind token_kind(uint64_t token) { return static_cast<SocketKind>(token & 1); }
uint32_t token_generation(uint64_t token) { return static_cast<uint32_t>(token >> 32); }

// RFC 5761 section 4: with rtcp-mux, RTCP is told apart by its packet type. Like rtpengine,
// 194..223 (192/193 collide with RTP payload types 64/65 with the marker bit set).
bool looks_like_rtcp(const uint8_t* data, uint32_t length) {
  return length >= 8 && (data[0] >> 6) == 2 && data[1] >= 194 && data[1] <= 223;
}

bool looks_like_rtp(const uint8_t* data, uint32_t length) { return length >= 12 && (data[0] >> 6) == 2; }

Endpoint rtcp_port_of(const LegState& leg) {
  Endpoint rtcp = leg.local;
  rtcp.set_port(static_cast<uint16_t>(leg.local.port() + 1));
  return rtcp;
}

}  // namespace


Worker::Worker(unsigned index, const WorkerConfig& config, int wake_fd, std::function<void()> notify)
    : index_(index), config_(config), wake_fd_(wake_fd), notify_(std::move(notify)),
      commands_(kCommandRing), events_(kEventRing) {}

Worker::~Worker() {
  stop();
  backend_.reset();
  close(wake_fd_);
}

void Worker::start() { thread_ = std::thread([this] { run(); }); }

void Worker::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  const uint64_t one = 1;  // always written: the stop must not depend on a pending wake-up
  [[maybe_unused]] const ssize_t written = write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

bool Worker::post(Command& command) { return commands_.push(command); }

void Worker::wake() {
  // The exchange is a release that the worker's acquiring exchange in run_commands reads: a
  // command pushed before it is seen by the drain that follows, so skipping the write is safe.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = write(wake_fd_, &one, sizeof(one));
}

void Worker::run() {
  // The coalescing window is a few hundred microseconds: the default 50 us timer slack would
  // stretch it noticeably.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  now_ms_ = monotonic_ms();
  next_sweep_ms_ = now_ms_ + kSweepIntervalMs;
  while (!stopping_.load(std::memory_order_acquire)) {
    const uint64_t now = monotonic_ms();
    const int timeout = next_sweep_ms_ > now ? static_cast<int>(next_sweep_ms_ - now) : 0;
    backend_->poll(*this, pending_events_.empty() ? timeout : 1);
    run_commands();
    now_ms_ = monotonic_ms();
    if (now_ms_ >= next_sweep_ms_) {
      sweep_idle();
      next_sweep_ms_ = now_ms_ + kSweepIntervalMs;
    }
    flush_events();
  }
  release_all_sockets();
}

// Stopping with live streams (the environment going away without closing them): close every
// socket before the thread ends, so the ports are free when stop() returns on every backend.
void Worker::release_all_sockets() {
  const std::vector<uint32_t> live = table_.live();
  for (uint32_t slot : live) {
    Stream* stream = table_.at(slot);
    const uint32_t generation = stream->generation.load(std::memory_order_relaxed);
    stream->closing = true;
    for (unsigned side = 0; side < 2; side++) {
      Leg& leg = stream->legs[side];
      if (leg.rtp_handle >= 0) backend_->detach(leg.rtp_handle, make_token(slot, side, SocketKind::Rtp, generation));
      if (leg.rtcp_handle >= 0) backend_->detach(leg.rtcp_handle, make_token(slot, side, SocketKind::Rtcp, generation));
      leg.rtp_handle = leg.rtcp_handle = -1;
    }
  }
  const uint64_t deadline = monotonic_ms() + 500;
  while (counters_.get(EngineCounter::sockets) > 0 && monotonic_ms() < deadline) backend_->poll(*this, 5);
}

// ---- packet path ---------------------------------------------------------------------------

void Worker::on_batch() {
  now_us_ = monotonic_us();
  now_ms_ = now_us_ / 1000;
}

// An imported leg goes on counting where its record stopped: the source continues from the last
// sequence number the old relay saw, so packets lost across a takeover count as lost.
void Worker::resume_reception(Leg& leg) {
  const uint64_t expected = leg.counters.get(LegCounter::rtp_expected);
  if (expected == 0) return;
  Leg::Reception& rx = leg.rx;
  rx.started = true;
  rx.ssrc = static_cast<uint32_t>(leg.counters.get(LegCounter::last_ssrc));
  rx.base_ext = rx.max_ext = static_cast<uint32_t>(leg.counters.get(LegCounter::last_seq)) & 0xffff;
  rx.received = 1;  // that last packet, already in the imported totals
  rx.expected_done = expected - 1;
  rx.lost_done = leg.counters.get(LegCounter::rtp_lost);
}

// RFC 3550 appendix A.1 (extended sequence numbers, expected and lost) and A.8 (interarrival
// jitter), for one RTP packet arriving on `leg`. No probation: the first packet of an SSRC
// starts its span, as a relay that must count from the first packet would.
void Worker::receive_rtp(Leg& leg, const uint8_t* data) {
  Leg::Reception& rx = leg.rx;
  const uint16_t seq = static_cast<uint16_t>((data[2] << 8) | data[3]);
  const uint32_t timestamp = (static_cast<uint32_t>(data[4]) << 24) | (static_cast<uint32_t>(data[5]) << 16) |
                             (static_cast<uint32_t>(data[6]) << 8) | data[7];
  const uint32_t ssrc = (static_cast<uint32_t>(data[8]) << 24) | (static_cast<uint32_t>(data[9]) << 16) |
                        (static_cast<uint32_t>(data[10]) << 8) | data[11];
  if (!rx.started || ssrc != rx.ssrc) {
    if (rx.started) {
      const uint64_t expected = static_cast<uint64_t>(rx.max_ext - rx.base_ext) + 1;
      rx.expected_done += expected;
      rx.lost_done += expected > rx.received ? expected - rx.received : 0;
    }
    rx.started = true;
    rx.ssrc = ssrc;
    rx.base_ext = rx.max_ext = seq;
    rx.received = 0;
    rx.has_transit = false;
  } else {
    // The candidate extended number nearest to the highest one: ahead by less than half the
    // sequence space counts as newer (with a wrap if it came round), anything else as late.
    const uint16_t delta = static_cast<uint16_t>(seq - static_cast<uint16_t>(rx.max_ext));
    if (delta != 0 && delta < 0x8000) rx.max_ext += delta;
  }
  rx.received++;
  const uint64_t expected = static_cast<uint64_t>(rx.max_ext - rx.base_ext) + 1;
  leg.counters.set(LegCounter::rtp_expected, rx.expected_done + expected);
  leg.counters.set(LegCounter::rtp_lost, rx.lost_done + (expected > rx.received ? expected - rx.received : 0));
  leg.counters.set(LegCounter::last_seq, seq);
  leg.counters.set(LegCounter::last_ssrc, ssrc);
  const uint32_t rate = leg.state.clock_rate;
  if (rate == 0) return;
  // Transit time in timestamp units; differences wrap like the 32-bit timestamps do.
  const uint32_t arrival = static_cast<uint32_t>(now_us_ * rate / 1000000);
  const int64_t transit = static_cast<int32_t>(arrival - timestamp);
  if (rx.has_transit) {
    int64_t d = transit - rx.last_transit;
    if (d < 0) d = -d;
    // A jump of more than 3 s (a source switched behind the same SSRC, a timestamp wrap the
    // sender did not follow) is a discontinuity, not jitter: the transit restarts from here.
    if (d <= static_cast<int64_t>(rate) * 3) {
      const uint64_t j = leg.counters.get(LegCounter::jitter_q4);
      leg.counters.set(LegCounter::jitter_q4, j + static_cast<uint64_t>(d) - ((j + 8) >> 4));
    }
  }
  rx.last_transit = transit;
  rx.has_transit = true;
}

void Worker::drop(Leg& leg, LegCounter leg_reason, EngineCounter engine_reason) {
  leg.counters.add(leg_reason);
  counters_.add(engine_reason);
  counters_.add(EngineCounter::packets_dropped);
}

SendTarget Worker::on_packet(const PacketView& packet) {
  counters_.add(EngineCounter::packets_received);
  counters_.add(EngineCounter::bytes_received, packet.length);
  const uint32_t slot = token_slot(packet.token);
  Stream* stream = table_.at(slot);
  if (stream == nullptr || !stream->live || stream->closing ||
      stream->generation.load(std::memory_order_relaxed) != token_generation(packet.token)) {
    counters_.add(EngineCounter::drops_stale);
    counters_.add(EngineCounter::packets_dropped);
    return {};
  }
  const unsigned side = token_side(packet.token);
  Leg& in = stream->legs[side];
  if (stream->standby) {
    drop(in, LegCounter::drops_standby, EngineCounter::drops_standby);
    return {};
  }
  const bool on_rtcp_socket = token_kind(packet.token) == SocketKind::Rtcp;
  const bool rtcp = on_rtcp_socket || (in.state.rtcp_mux && looks_like_rtcp(packet.data, packet.length));
  Latch& latch = on_rtcp_socket ? in.state.rtcp : in.state.rtp;
  const Endpoint source = Endpoint::from_sockaddr(packet.source, packet.source_length);
  const LatchResult verdict = latch_packet(in.state, latch, source, now_ms_, config_.learning_window_ms);
  if (verdict == LatchResult::Drop) {
    drop(in, LegCounter::drops_source, EngineCounter::drops_source);
    return {};
  }
  if (verdict == LatchResult::AcceptLocked)
    learned(slot, *stream, side, on_rtcp_socket ? SocketKind::Rtcp : SocketKind::Rtp, latch.remote);

  in.counters.add(rtcp ? LegCounter::rtcp_packets_in : LegCounter::rtp_packets_in);
  in.counters.add(rtcp ? LegCounter::rtcp_bytes_in : LegCounter::rtp_bytes_in, packet.length);
  in.counters.set(LegCounter::last_packet_ms, now_ms_);
  in.idle_reported = false;
  // Datagrams that are not RTP (empty ones included) are forwarded unchanged, as rtpengine does.
  if (!rtcp) {
    if (looks_like_rtp(packet.data, packet.length)) {
      receive_rtp(in, packet.data);
    } else {
      in.counters.add(LegCounter::nonrtp_packets_in);
    }
  }

  Leg& out = stream->legs[side ^ 1];
  const bool via_rtcp_socket = rtcp && !out.state.rtcp_mux;
  const Endpoint& destination = via_rtcp_socket ? out.state.rtcp.remote : out.state.rtp.remote;
  const int handle = via_rtcp_socket ? out.rtcp_handle : out.rtp_handle;
  if (!destination.known() || handle < 0) {
    drop(in, LegCounter::drops_no_destination, EngineCounter::drops_no_destination);
    return {};
  }
  out.counters.add(LegCounter::packets_out);
  out.counters.add(LegCounter::bytes_out, packet.length);
  counters_.add(EngineCounter::packets_forwarded);
  counters_.add(EngineCounter::bytes_forwarded, packet.length);
  const uint32_t generation = stream->generation.load(std::memory_order_relaxed);
  return {handle, make_token(slot, side ^ 1, via_rtcp_socket ? SocketKind::Rtcp : SocketKind::Rtp, generation),
          &destination};
}

void Worker::on_oversize(uint64_t token) {
  counters_.add(EngineCounter::drops_oversize);
  counters_.add(EngineCounter::packets_dropped);
  Stream* stream = table_.at(token_slot(token));
  if (stream != nullptr && stream->live) stream->legs[token_side(token)].counters.add(LegCounter::drops_malformed);
}

void Worker::on_send_error(uint64_t token, int) {
  Stream* stream = table_.at(token_slot(token));
  if (stream != nullptr && stream->live) stream->legs[token_side(token)].counters.add(LegCounter::drops_send);
}

void Worker::learned(uint32_t slot, Stream& stream, unsigned side, SocketKind kind, const Endpoint& endpoint) {
  // Until RTCP has a source of its own, it follows RTP to the next port up.
  Leg& leg = stream.legs[side];
  if (kind == SocketKind::Rtp && !leg.state.rtcp_mux && leg.state.rtcp.state == LatchState::Unlearned) {
    leg.state.rtcp.remote = endpoint;
    leg.state.rtcp.remote.set_port(static_cast<uint16_t>(endpoint.port() + 1));
  }
  Event event;
  event.type = EventType::Learned;
  event.slot = slot;
  event.generation = stream.generation.load(std::memory_order_relaxed);
  event.side = static_cast<uint8_t>(side);
  event.kind = static_cast<uint8_t>(kind);
  event.endpoint = endpoint;
  emit(event);
}

// ---- control path --------------------------------------------------------------------------

Stream* Worker::live_stream(uint32_t slot, uint32_t generation) {
  Stream* stream = table_.at(slot);
  if (stream == nullptr || !stream->live || stream->generation.load(std::memory_order_relaxed) != generation)
    return nullptr;
  return stream;
}

void Worker::run_commands() {
  wake_pending_.exchange(false, std::memory_order_acq_rel);
  Command command;
  while (commands_.pop(command)) {
    counters_.add(EngineCounter::commands);
    switch (command.type) {
      case CommandType::Create: create(command); break;
      case CommandType::Update: update(command); break;
      case CommandType::Close: close_stream(command); break;
      case CommandType::Export: export_stream(command); break;
      case CommandType::Activate: activate(command); break;
      case CommandType::None: break;
    }
    if (command.setup) release_descriptors(*command.setup);
    command = Command{};
  }
}

bool Worker::attach_leg(Stream& stream, uint32_t slot, unsigned side, LegSetup& setup) {
  Leg& leg = stream.legs[side];
  const uint32_t generation = stream.generation.load(std::memory_order_relaxed);
  leg.state = setup.state;
  leg.counters.reset();
  leg.rx = Leg::Reception{};
  if (setup.has_counters) {
    for (size_t i = 0; i < kLegCounterCount; i++) leg.counters.v[i].store(setup.counters[i], std::memory_order_relaxed);
    resume_reception(leg);
  }
  leg.idle_reported = false;
  const bool socketless = backend_->socketless();
  const Endpoint rtcp_local = rtcp_port_of(leg.state);
  leg.rtp_handle = attach_socket(stream, setup.rtp_fd, socketless ? &leg.state.local : nullptr,
                                 make_token(slot, side, SocketKind::Rtp, generation));
  leg.rtcp_handle = attach_socket(stream, setup.rtcp_fd, socketless && !leg.state.rtcp_mux ? &rtcp_local : nullptr,
                                  make_token(slot, side, SocketKind::Rtcp, generation));
  return leg.rtp_handle >= 0 && (leg.state.rtcp_mux || leg.rtcp_handle >= 0);
}

// A socket backend takes the descriptor the engine bound; a socketless one (AF_XDP) takes the
// local address and port (`port`) instead.
int Worker::attach_socket(Stream& stream, int& fd, const Endpoint* port, uint64_t token) {
  int handle;
  if (port != nullptr) {
    handle = backend_->attach_port(*port, token);
  } else {
    if (fd < 0) return -1;
    handle = backend_->attach(fd, token);
    fd = -1;
  }
  if (handle < 0) return -1;
  stream.sockets_open++;
  counters_.add(EngineCounter::sockets);
  return handle;
}

void Worker::create(Command& command) {
  Stream* stream = table_.at(command.slot);
  Event done;
  done.type = EventType::Done;
  done.request = command.request;
  done.slot = command.slot;
  done.generation = command.generation;
  stream->generation.store(command.generation, std::memory_order_relaxed);
  stream->live = true;
  stream->closing = false;
  stream->standby = command.setup->standby;
  stream->sockets_open = 0;
  stream->created_ms = monotonic_ms();
  table_.mark_live(command.slot, *stream);
  counters_.add(EngineCounter::streams);
  bool ok = true;
  for (unsigned side = 0; side < 2; side++) ok = attach_leg(*stream, command.slot, side, command.setup->legs[side]) && ok;
  if (!ok) done.value = 1;  // attached partially: the JS side closes it again
  emit(done);
}

// A new signalled endpoint (re-INVITE, transfer) replaces the destination and restarts learning,
// as rtpengine does when the advertised endpoint changes; the same endpoint again changes nothing.
static void resignal(Latch& latch, const Endpoint& signalled) {
  if (signalled.known() ? signalled == latch.signalled : !latch.signalled.known()) return;
  latch.signalled = signalled;
  latch.remote = signalled;
  latch.state = LatchState::Unlearned;
  latch.priority = 0;
}

void Worker::apply_update(Stream& stream, uint32_t slot, unsigned side, LegSetup& setup) {
  Leg& leg = stream.legs[side];
  const LegState& next = setup.state;
  if (setup.fields & kFieldRemoteRtp) resignal(leg.state.rtp, next.rtp.signalled);
  if (setup.fields & kFieldRemoteRtcp) resignal(leg.state.rtcp, next.rtcp.signalled);
  if (setup.fields & kFieldLearning) leg.state.learning = next.learning;
  if (setup.fields & kFieldStrict) leg.state.strict_source = next.strict_source;
  if (setup.fields & kFieldAsymmetric) leg.state.asymmetric = next.asymmetric;
  if (setup.fields & kFieldClockRate) leg.state.clock_rate = next.clock_rate;
  if (!(setup.fields & kFieldRtcpMux) || next.rtcp_mux == leg.state.rtcp_mux) return;
  leg.state.rtcp_mux = next.rtcp_mux;
  // Switching mux on keeps an RTCP socket the leg has, as rtpengine keeps its fallback RTCP
  // port: RTCP still arriving there is forwarded, and switching mux off again never has to
  // re-bind a port whose old socket may still be closing.
  if (!next.rtcp_mux && leg.rtcp_handle < 0) {
    const Endpoint rtcp_local = rtcp_port_of(leg.state);
    leg.rtcp_handle = attach_socket(stream, setup.rtcp_fd, backend_->socketless() ? &rtcp_local : nullptr,
                                    make_token(slot, side, SocketKind::Rtcp, stream.generation.load()));
  }
}

void Worker::update(Command& command) {
  Event done;
  done.type = EventType::Done;
  done.request = command.request;
  done.slot = command.slot;
  done.generation = command.generation;
  Stream* stream = live_stream(command.slot, command.generation);
  if (stream == nullptr || stream->closing) {
    done.value = 1;
  } else {
    for (unsigned side = 0; side < 2; side++) apply_update(*stream, command.slot, side, command.setup->legs[side]);
  }
  emit(done);
}

void Worker::close_stream(Command& command) {
  Stream* stream = live_stream(command.slot, command.generation);
  if (stream == nullptr || stream->closing) return;
  stream->closing = true;
  stream->close_request = command.request;
  for (unsigned side = 0; side < 2; side++) {
    Leg& leg = stream->legs[side];
    if (leg.rtp_handle >= 0) backend_->detach(leg.rtp_handle, make_token(command.slot, side, SocketKind::Rtp, command.generation));
    if (leg.rtcp_handle >= 0)
      backend_->detach(leg.rtcp_handle, make_token(command.slot, side, SocketKind::Rtcp, command.generation));
    leg.rtp_handle = leg.rtcp_handle = -1;
  }
  finish_close(command.slot, *stream);
}

void Worker::on_detached(uint64_t token) {
  counters_.set(EngineCounter::sockets, counters_.get(EngineCounter::sockets) - 1);
  Stream* stream = table_.at(token_slot(token));
  if (stream == nullptr || !stream->live) return;
  if (stream->sockets_open > 0) stream->sockets_open--;
  finish_close(token_slot(token), *stream);
}

// A closing stream is gone once its last socket is closed: only then are its ports free.
void Worker::finish_close(uint32_t slot, Stream& stream) {
  if (!stream.closing || stream.sockets_open > 0) return;
  stream.live = false;
  table_.mark_dead(stream);
  counters_.set(EngineCounter::streams, counters_.get(EngineCounter::streams) - 1);
  Event closed;
  closed.type = EventType::Closed;
  closed.request = stream.close_request;
  closed.slot = slot;
  closed.generation = stream.generation.load(std::memory_order_relaxed);
  emit(closed);
}

void Worker::export_stream(Command& command) {
  Event exported;
  exported.type = EventType::Exported;
  exported.request = command.request;
  exported.slot = command.slot;
  exported.generation = command.generation;
  Stream* stream = live_stream(command.slot, command.generation);
  if (stream != nullptr) {
    StreamRecord record;
    record.standby = stream->standby;
    for (unsigned side = 0; side < 2; side++) {
      record.legs[side].state = stream->legs[side].state;
      for (size_t i = 0; i < kLegCounterCount; i++)
        record.legs[side].counters[i] = stream->legs[side].counters.v[i].load(std::memory_order_relaxed);
    }
    exported.payload.reset(new std::string(encode_record(record)));
  }
  emit(exported);
}

void Worker::activate(Command& command) {
  if (command.slot == kAllStreams) {
    for (uint32_t slot : table_.live()) table_.at(slot)->standby = command.standby;
  } else {
    Stream* stream = live_stream(command.slot, command.generation);
    if (stream != nullptr) stream->standby = command.standby;
  }
  Event done;
  done.type = EventType::Done;
  done.request = command.request;
  done.slot = command.slot;
  done.generation = command.generation;
  emit(done);
}

void Worker::sweep_idle() {
  if (config_.idle_timeout_ms == 0) return;
  for (uint32_t slot : table_.live()) {
    Stream* stream = table_.at(slot);
    if (stream->closing || stream->standby) continue;
    for (unsigned side = 0; side < 2; side++) {
      Leg& leg = stream->legs[side];
      if (leg.idle_reported) continue;
      const uint64_t last = leg.counters.get(LegCounter::last_packet_ms);
      const uint64_t since = last > stream->created_ms ? last : stream->created_ms;
      if (now_ms_ < since + config_.idle_timeout_ms) continue;
      leg.idle_reported = true;
      Event idle;
      idle.type = EventType::Idle;
      idle.slot = slot;
      idle.generation = stream->generation.load(std::memory_order_relaxed);
      idle.side = static_cast<uint8_t>(side);
      idle.value = now_ms_ - since;
      emit(idle);
    }
  }
}

void Worker::emit(Event& event) {
  counters_.add(EngineCounter::events);
  if (pending_events_.empty() && events_.push(event)) return;
  pending_events_.push_back(std::move(event));
}

void Worker::flush_events() {
  size_t sent = 0;
  while (sent < pending_events_.size() && events_.push(pending_events_[sent])) sent++;
  pending_events_.erase(pending_events_.begin(), pending_events_.begin() + static_cast<long>(sent));
  if (!events_.empty()) notify_();
}

}  // namespace rtphub
