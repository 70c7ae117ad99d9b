// The one list of counters. Every per-leg and per-engine counter is declared here once;
// the addon exports the names in this order and the TypeScript side reads them from there.
// Counters are single-writer (the owning worker) and read concurrently by the JS thread, so
// they are relaxed atomics bumped with a plain load+store (no locked instruction).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

// Per leg: what arrived on the leg's sockets, what was sent from them, drops by reason, the
// last packet seen (time in ms of CLOCK_MONOTONIC, SSRC and sequence number of the last RTP),
// and RFC 3550 reception figures for the RTP arriving on the leg: packets expected (extended
// sequence span, summed over SSRCs), lost (expected - received, never below 0 per SSRC) and
// the interarrival jitter times 16 in RTP timestamp units (the RFC's integer form; divide by
// 16 and by the clock rate for seconds). Arrival times are taken once per receive batch, so
// jitter below the coalescing window (--coalesce-us) is not resolved.
#define RTPHUB_LEG_COUNTERS(X) \
  X(rtp_packets_in)            \
  X(rtp_bytes_in)              \
  X(rtcp_packets_in)           \
  X(rtcp_bytes_in)             \
  X(packets_out)               \
  X(bytes_out)                 \
  X(nonrtp_packets_in)         \
  X(drops_source)              \
  X(drops_no_destination)      \
  X(drops_standby)             \
  X(drops_malformed)           \
  X(drops_send)                \
  X(last_packet_ms)            \
  X(last_ssrc)                 \
  X(last_seq)                  \
  X(rtp_expected)              \
  X(rtp_lost)                  \
  X(jitter_q4)

// Per engine (summed over workers by the reader).
#define RTPHUB_ENGINE_COUNTERS(X) \
  X(packets_received)             \
  X(bytes_received)               \
  X(packets_forwarded)            \
  X(bytes_forwarded)              \
  X(packets_dropped)              \
  X(drops_malformed)              \
  X(drops_oversize)               \
  X(drops_source)                 \
  X(drops_no_destination)         \
  X(drops_standby)                \
  X(drops_stale)                  \
  X(send_errors)                  \
  X(wakeups)                      \
  X(recv_syscalls)                \
  X(send_syscalls)                \
  X(buffers_exhausted)            \
  X(recv_rearms)                  \
  X(commands)                     \
  X(events)                       \
  X(streams)                      \
  X(sockets)                      \
  X(drops_no_neighbour)          \
  X(xdp_rx_dropped)              \
  X(xdp_rx_ring_full)

namespace rtphub {

#define RTPHUB_ENUM_ENTRY(name) name,
enum class LegCounter : std::size_t { RTPHUB_LEG_COUNTERS(RTPHUB_ENUM_ENTRY) kCount };
enum class EngineCounter : std::size_t { RTPHUB_ENGINE_COUNTERS(RTPHUB_ENUM_ENTRY) kCount };
#undef RTPHUB_ENUM_ENTRY

constexpr std::size_t kLegCounterCount = static_cast<std::size_t>(LegCounter::kCount);
constexpr std::size_t kEngineCounterCount = static_cast<std::size_t>(EngineCounter::kCount);

extern const char* const kLegCounterNames[kLegCounterCount];
extern const char* const kEngineCounterNames[kEngineCounterCount];

// A fixed array of single-writer counters indexed by an enum.
template <typename Index, std::size_t N>
struct CounterSet {
  std::atomic<uint64_t> v[N] = {};

  void add(Index i, uint64_t d = 1) {
    auto& c = v[static_cast<std::size_t>(i)];
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  void set(Index i, uint64_t value) { v[static_cast<std::size_t>(i)].store(value, std::memory_order_relaxed); }
  uint64_t get(Index i) const { return v[static_cast<std::size_t>(i)].load(std::memory_order_relaxed); }
  void reset() {
    for (auto& c : v) c.store(0, std::memory_order_relaxed);
  }
};

using LegCounters = CounterSet<LegCounter, kLegCounterCount>;
using EngineCounters = CounterSet<EngineCounter, kEngineCounterCount>;

}  // namespace rtphub
