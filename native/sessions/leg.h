// A leg is one side of a stream: the relay's local socket(s) facing one party, the endpoint
// that party is reached at, and how that endpoint is learned. A Stream pairs two legs; a packet
// received on one leg is sent from the other leg's socket to the other leg's endpoint.
//
// Ownership: a Stream lives in its worker's StreamTable and is mutated only by that worker
// (commands included). The JS thread reads only the atomic counters and the generation.
#pragma once

#include <atomic>
#include <cstdint>

#include "counters.h"
#include "endpoint.h"

namespace rtphub {

enum class Learning : uint8_t { Off = 0, Immediate = 1, Delayed = 2, Heuristic = 3 };

// What a latch knows about the source it sends to.
enum class LatchState : uint8_t { Unlearned = 0, Tentative = 1, Locked = 2 };

struct Latch {
  Endpoint remote;      // current destination for packets to this party
  Endpoint signalled;   // what the signalling said (may be unknown)
  LatchState state = LatchState::Unlearned;
  uint8_t priority = 0;         // heuristic: 3 = address+port match, 2 = address, 1 = any
  uint64_t deadline_ms = 0;     // delayed/heuristic: when the tentative endpoint locks
};

// Plain, copyable description of a leg: what a create/update/import carries and what an
// export produces (with a copy of the counters beside it). No descriptors, no atomics.
struct LegState {
  Endpoint local;               // bound address and RTP port
  bool rtcp_mux = false;
  Learning learning = Learning::Delayed;
  bool strict_source = false;
  bool asymmetric = false;
  uint32_t clock_rate = 8000;   // RTP clock of what this party sends (jitter); 0: no jitter
  Latch rtp;
  Latch rtcp;
};

// Socket slot kinds: which of the leg's sockets a packet arrived on.
enum class SocketKind : uint8_t { Rtp = 0, Rtcp = 1 };

struct Leg {
  LegState state;
  int rtp_handle = -1;   // backend handle of the RTP (or muxed) socket
  int rtcp_handle = -1;  // backend handle of the RTCP socket, -1 with rtcp-mux
  bool idle_reported = false;
  // RFC 3550 receiver state for the RTP arriving on this leg (one source at a time: a new
  // SSRC closes the span of the old one into the cumulative counters).
  struct Reception {
    bool started = false;
    uint32_t ssrc = 0;
    uint32_t base_ext = 0;      // first extended sequence number of the current SSRC
    uint32_t max_ext = 0;       // highest extended sequence number seen
    uint64_t received = 0;      // RTP packets of the current SSRC
    uint64_t expected_done = 0; // spans of earlier SSRCs
    uint64_t lost_done = 0;
    int64_t last_transit = 0;
    bool has_transit = false;
  } rx;
  LegCounters counters;
};

}  // namespace rtphub
