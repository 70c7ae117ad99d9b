// Chunked stream storage and the worker's list of live slots.
#include "stream_table.h"

namespace rtphub {

bool StreamTable::ensure(uint32_t index) {
  if (index >= kCapacity) return false;
  const uint32_t chunk = index >> kChunkBits;
  if (chunks_[chunk].load(std::memory_order_relaxed) != nullptr) return true;
  owned_.emplace_back(new Stream[kChunkSize]);
  chunks_[chunk].store(owned_.back().get(), std::memory_order_release);
  return true;
}

void StreamTable::mark_live(uint32_t index, Stream& s) {
  s.live_index = static_cast<uint32_t>(live_.size());
  live_.push_back(index);
}

void StreamTable::mark_dead(Stream& s) {
  const uint32_t pos = s.live_index;
  const uint32_t moved = live_.back();
  live_[pos] = moved;
  live_.pop_back();
  if (pos < live_.size()) at(moved)->live_index = pos;
}

}  // namespace rtphub
