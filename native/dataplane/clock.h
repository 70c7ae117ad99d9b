// The one clock of the data plane (CLOCK_MONOTONIC, the clock process.hrtime reads, so the
// JS side compares `last_packet_ms` with its own readings directly) and the coalescing sleep.
#pragma once

#include <time.h>

#include <cerrno>
#include <cstdint>

namespace rtphub {

inline uint64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

inline uint64_t monotonic_ms() { return monotonic_us() / 1000; }

// Sleeps `us` microseconds (the coalescing window), resuming after signals.
inline void sleep_us(unsigned us) {
  timespec ts{0, static_cast<long>(us) * 1000};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

}  // namespace rtphub
