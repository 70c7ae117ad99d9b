// The per-worker stream table. Slots are handed out by the JS thread (which knows each
// worker's free slots) and filled in by the worker when it runs the create command, so the
// table itself is written only by its worker. Storage is chunked and never moves or shrinks
// while the engine lives, so the JS thread may read a slot's atomic counters at any time;
// the slot's generation tells it whether the slot still holds the stream it asked about.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "leg.h"

namespace rtphub {

struct Stream {
  std::atomic<uint32_t> generation{0};  // bumped when the slot is (re)used; odd = live
  Leg legs[2];
  bool live = false;
  bool standby = false;
  bool closing = false;
  uint8_t sockets_open = 0;      // sockets still attached; the close completes at zero
  uint32_t close_request = 0;    // request id to answer when the close completes
  uint32_t live_index = 0;       // position in StreamTable::live_
  uint64_t created_ms = 0;
};

class StreamTable {
 public:
  static constexpr uint32_t kChunkBits = 6;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kMaxChunks = 16384;  // 1M streams per worker
  static constexpr uint32_t kCapacity = kChunkSize * kMaxChunks;

  StreamTable() = default;
  StreamTable(const StreamTable&) = delete;
  StreamTable& operator=(const StreamTable&) = delete;

  // JS thread: make sure slot `index` exists before handing it to the worker.
  bool ensure(uint32_t index);
  // Any thread: the slot, or nullptr when its chunk was never allocated.
  Stream* at(uint32_t index) const {
    if (index >= kCapacity) return nullptr;
    Stream* chunk = chunks_[index >> kChunkBits].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
  }

  // Worker: the list of live slots, for periodic sweeps.
  void mark_live(uint32_t index, Stream& s);
  void mark_dead(Stream& s);
  const std::vector<uint32_t>& live() const { return live_; }

 private:
  std::array<std::atomic<Stream*>, kMaxChunks> chunks_{};
  std::vector<std::unique_ptr<Stream[]>> owned_;  // JS thread only
  std::vector<uint32_t> live_;                    // worker only
};

}  // namespace rtphub
