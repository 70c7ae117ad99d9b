// Endpoint learning (latching), as rtpengine does it. Pure functions over a Latch so the
// rules can be read in one place and tested without sockets:
//  - off / asymmetric: never learn; send to the signalled endpoint.
//  - immediate: the first source is learned and locked.
//  - delayed: every source updates the endpoint during a window from the first packet; then it locks.
//  - heuristic: like delayed, but a source matching the signalled address and port (priority 3)
//    beats one matching the address (2), which beats any other (1); priority 3 locks at once.
//  - strict source: once locked (or, without learning, against the signalled endpoint), packets
//    from any other source are dropped.
#pragma once

#include "leg.h"

namespace rtphub {

enum class LatchResult : uint8_t { Accept, AcceptLocked, Drop };

inline uint8_t heuristic_priority(const Latch& latch, const Endpoint& src) {
  if (!latch.signalled.known()) return 1;
  if (latch.signalled == src) return 3;
  return latch.signalled.same_address(src) ? 2 : 1;
}

// Applies one packet from `src` to `latch`. AcceptLocked means the latch locked just now (the
// caller reports the learned endpoint once).
inline LatchResult latch_packet(const LegState& leg, Latch& latch, const Endpoint& src, uint64_t now_ms,
                                uint64_t window_ms) {
  if (leg.asymmetric || leg.learning == Learning::Off) {
    if (leg.strict_source && latch.remote.known() && src != latch.remote) return LatchResult::Drop;
    return LatchResult::Accept;
  }
  if (latch.state == LatchState::Locked) {
    if (leg.strict_source && src != latch.remote) return LatchResult::Drop;
    return LatchResult::Accept;
  }
  if (leg.learning == Learning::Immediate) {
    latch.remote = src;
    latch.state = LatchState::Locked;
    return LatchResult::AcceptLocked;
  }
  const uint8_t priority = leg.learning == Learning::Heuristic ? heuristic_priority(latch, src) : 1;
  if (latch.state == LatchState::Unlearned) {
    latch.state = LatchState::Tentative;
    latch.deadline_ms = now_ms + window_ms;
    latch.priority = 0;
  }
  if (priority >= latch.priority) {
    latch.remote = src;
    latch.priority = priority;
  }
  if (priority == 3 || now_ms >= latch.deadline_ms) {
    latch.state = LatchState::Locked;
    return LatchResult::AcceptLocked;
  }
  return LatchResult::Accept;
}

}  // namespace rtphub
