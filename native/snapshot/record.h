// Restoration records: a stream's state (both legs: local address and port, signalled and
// learned endpoints, learning mode and latch state, counters) as compact, versioned bytes.
// Pure functions with no I/O, so a standby relay, Redis or a file can carry them. Decoding
// checks every field and fails with a message instead of trusting the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../sessions/leg.h"

namespace rtphub {

constexpr uint8_t kRecordFormatVersion = 1;

struct LegRecord {
  LegState state;
  uint64_t counters[kLegCounterCount] = {};
};

struct StreamRecord {
  bool standby = false;
  LegRecord legs[2];
};

std::string encode_record(const StreamRecord& record);
// False (and a reason in `error`) for anything that is not a well-formed record of a known version.
bool decode_record(const uint8_t* data, size_t length, StreamRecord& out, std::string& error);

}  // namespace rtphub
