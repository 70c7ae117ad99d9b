// Next hops for the AF_XDP backend's transmit path, taken from the kernel: the route to a
// destination (its device and gateway) and the neighbour table's MAC address for that next hop,
// over rtnetlink. The kernel never sees the packets we send, so it would let an entry go stale
// and expire: a stale entry is re-confirmed (NTF_USE makes the kernel probe it) and every entry
// is looked up again each second, keeping its old MAC until the kernel has a new one. An entry
// no packet asked for since its last check is forgotten, so the table follows the live calls.
//
// Threading: one table per worker, used only by that worker. find() is on the packet path and
// never makes a system call: a destination it does not know is queued, and refresh() (between
// batches, bounded work) resolves it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace rtphub {

struct NextHop {
  unsigned device = 0;  // index into the backend's device list
  uint8_t mac[6] = {};
};

class NeighbourTable {
 public:
  NeighbourTable();
  ~NeighbourTable();
  NeighbourTable(const NeighbourTable&) = delete;
  NeighbourTable& operator=(const NeighbourTable&) = delete;

  bool open(std::string& error);
  // The devices (by ifindex, 0 = absent) next hops may use; changing them forgets every entry.
  void set_devices(const std::vector<int>& ifindexes);
  // Packet path: the next hop for an IPv4 destination (network byte order), or nullptr.
  const NextHop* find(uint32_t destination);
  // Control path: resolves new destinations and re-checks old ones, at most `budget` lookups.
  void refresh(uint64_t now_ms, unsigned budget);
  // A destination waits for the kernel: refresh soon (packets to it are dropped meanwhile).
  bool resolving() const { return !pending_.empty() || waiting_; }

 private:
  enum class State : uint8_t { Pending, Resolved, Unreachable };
  struct Entry {
    State state = State::Pending;
    bool used = true;  // find() asked for it since the last check
    uint64_t unresolved_since_ms = 0;  // 0: the kernel had a usable entry at the last check
    NextHop hop;
    uint64_t next_check_ms = 0;
  };

  void resolve(uint32_t destination, Entry& entry, uint64_t now_ms);
  bool route(uint32_t destination, int& ifindex, uint32_t& next_hop);
  int neighbour(int ifindex, uint32_t address, uint8_t* mac);
  void probe(int ifindex, uint32_t address);
  bool request(void* message, uint32_t length, int expect_type, void* reply, uint32_t reply_size);

  int socket_ = -1;
  uint32_t sequence_ = 0;
  std::vector<int> ifindexes_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::vector<uint32_t> pending_;
  bool waiting_ = false;  // the last refresh left an entry unresolved
};

}  // namespace rtphub
