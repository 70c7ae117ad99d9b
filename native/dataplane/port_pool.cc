// Port pairs: index i is RTP port first_ + 2i, RTCP port first_ + 2i + 1.
#include "port_pool.h"

namespace rtphub {

PortPool::PortPool(uint16_t port_min, uint16_t port_max) {
  first_ = static_cast<uint16_t>(port_min + (port_min & 1));
  const uint32_t count = port_max > first_ ? (static_cast<uint32_t>(port_max) - first_ + 1) / 2 : 0;
  used_.assign(count, false);
}

int PortPool::index_of(uint16_t rtp_port) const {
  if (rtp_port < first_ || (rtp_port - first_) & 1) return -1;
  const uint32_t index = (rtp_port - first_) / 2;
  return index < used_.size() ? static_cast<int>(index) : -1;
}

uint16_t PortPool::next_free(uint32_t& cursor, uint32_t& scanned) const {
  const uint32_t count = pairs();
  while (scanned < count) {
    const uint32_t index = cursor % count;
    cursor = index + 1;
    scanned++;
    if (!used_[index]) return static_cast<uint16_t>(first_ + 2 * index);
  }
  return 0;
}

bool PortPool::reserve(uint16_t rtp_port) {
  const int index = index_of(rtp_port);
  if (index < 0 || used_[index]) return false;
  used_[index] = true;
  in_use_++;
  return true;
}

void PortPool::release(uint16_t rtp_port) {
  const int index = index_of(rtp_port);
  if (index < 0 || !used_[index]) return;
  used_[index] = false;
  in_use_--;
}

}  // namespace rtphub
