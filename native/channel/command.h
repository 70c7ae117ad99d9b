// Messages between the JS thread and a worker. Commands flow JS -> worker, events flow
// worker -> JS, each through its own SpscRing. Both are move-only and carry heap data only on
// the control path (setups, exported records), never per packet.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../sessions/leg.h"

namespace rtphub {

// Which parts of a leg an update changes.
enum LegField : uint32_t {
  kFieldRemoteRtp = 1u << 0,
  kFieldRemoteRtcp = 1u << 1,
  kFieldLearning = 1u << 2,
  kFieldStrict = 1u << 3,
  kFieldAsymmetric = 1u << 4,
  kFieldRtcpMux = 1u << 5,
  kFieldClockRate = 1u << 6,
  kFieldAll = 0xffffffffu,
};

struct LegSetup {
  LegState state;
  uint32_t fields = kFieldAll;
  int rtp_fd = -1;   // create/import: the bound RTP (or muxed) socket, owned by the command
  int rtcp_fd = -1;  // create/import/update to non-mux: the bound RTCP socket
  bool has_counters = false;
  uint64_t counters[kLegCounterCount] = {};
};

struct StreamSetup {
  LegSetup legs[2];
  bool standby = false;
};

enum class CommandType : uint8_t { None, Create, Update, Close, Export, Activate };

constexpr uint32_t kAllStreams = 0xffffffffu;

struct Command {
  CommandType type = CommandType::None;
  uint32_t request = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
  bool standby = false;  // Activate: false starts forwarding, true stops it (stepping down)
  std::unique_ptr<StreamSetup> setup;
};

enum class EventType : uint8_t { None, Done, Closed, Exported, Learned, Idle };

struct Event {
  EventType type = EventType::None;
  uint32_t request = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint8_t side = 0;
  uint8_t kind = 0;  // SocketKind for Learned
  Endpoint endpoint;
  uint64_t value = 0;  // Idle: ms since the last packet
  std::unique_ptr<std::string> payload;  // Exported: the encoded record
};

// Closes any descriptors a command still owns (when it is dropped instead of run).
void release_descriptors(StreamSetup& setup);

}  // namespace rtphub
