// The media port pool of one local address: pairs of ports (even RTP, odd RTCP) taken from
// --port-min..--port-max. Owned by the JS thread. A pair is always reserved whole, even for an
// rtcp-mux leg, so that a leg can switch mux off later without moving.
#pragma once

#include <cstdint>
#include <vector>

namespace rtphub {

class PortPool {
 public:
  PortPool(uint16_t port_min, uint16_t port_max);

  uint32_t pairs() const { return static_cast<uint32_t>(used_.size()); }
  uint32_t in_use() const { return in_use_; }
  // The next free pair's RTP port, starting after the last one handed out; 0 when none.
  // `skip` lets a caller pass over pairs it could not bind, within one search.
  uint16_t next_free(uint32_t& cursor, uint32_t& scanned) const;
  bool reserve(uint16_t rtp_port);   // false when outside the range or taken
  void release(uint16_t rtp_port);
  uint32_t& cursor() { return cursor_; }

 private:
  int index_of(uint16_t rtp_port) const;

  uint16_t first_;
  std::vector<bool> used_;
  uint32_t in_use_ = 0;
  uint32_t cursor_ = 0;
};

}  // namespace rtphub
