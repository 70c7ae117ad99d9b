// Route and neighbour lookups over rtnetlink. rtnetlink answers a request inside the sending
// system call, so every reply is read without blocking.
#include "xdp_neighbours.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rtphub {
namespace {

constexpr uint64_t kRecheckResolvedMs = 1000;
constexpr uint64_t kRecheckPendingMs = 2;        // ARP on a LAN answers within this
constexpr uint64_t kPendingFastMs = 50;           // after this long, a silent neighbour ...
constexpr uint64_t kRecheckSilentMs = 200;        // ... is re-checked at this pace
constexpr uint64_t kRecheckUnreachableMs = 1000;
constexpr size_t kMaxPending = 4096;
constexpr uint16_t kNudUsable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

struct Request {
  nlmsghdr header;
  union {
    rtmsg route;
    ndmsg neighbour;
  };
  char attributes[64];
};

void add_attribute(Request& r, uint16_t type, const void* data, uint16_t length) {
  rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&r) + NLMSG_ALIGN(r.header.nlmsg_len));
  a->rta_type = type;
  a->rta_len = static_cast<uint16_t>(RTA_LENGTH(length));
  std::memcpy(RTA_DATA(a), data, length);
  r.header.nlmsg_len = NLMSG_ALIGN(r.header.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

}  // namespace

NeighbourTable::NeighbourTable() { pending_.reserve(kMaxPending); }

NeighbourTable::~NeighbourTable() {
  if (socket_ >= 0) close(socket_);
}

bool NeighbourTable::open(std::string& error) {
  socket_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (socket_ < 0) {
    error = std::string("netlink socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(socket_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
    error = std::string("netlink bind: ") + std::strerror(errno);
    return false;
  }
  return true;
}

void NeighbourTable::set_devices(const std::vector<int>& ifindexes) {
  ifindexes_ = ifindexes;
  entries_.clear();
  pending_.clear();
}

const NextHop* NeighbourTable::find(uint32_t destination) {
  const auto it = entries_.find(destination);
  if (it != entries_.end()) {
    it->second.used = true;
    return it->second.state == State::Resolved ? &it->second.hop : nullptr;
  }
  if (pending_.size() < kMaxPending) {
    entries_.emplace(destination, Entry{});
    pending_.push_back(destination);
  }
  return nullptr;
}

void NeighbourTable::refresh(uint64_t now_ms, unsigned budget) {
  waiting_ = false;
  while (!pending_.empty() && budget > 0) {
    const uint32_t destination = pending_.back();
    pending_.pop_back();
    const auto it = entries_.find(destination);
    if (it == entries_.end()) continue;
    resolve(destination, it->second, now_ms);
    budget--;
  }
  for (auto it = entries_.begin(); it != entries_.end() && budget > 0;) {
    Entry& entry = it->second;
    if (entry.next_check_ms > now_ms) {
      if (entry.unresolved_since_ms != 0 && now_ms < entry.unresolved_since_ms + kPendingFastMs) waiting_ = true;
      ++it;
      continue;
    }
    if (!entry.used) {
      it = entries_.erase(it);
      continue;
    }
    entry.used = false;
    resolve(it->first, entry, now_ms);
    budget--;
    ++it;
  }
}

void NeighbourTable::resolve(uint32_t destination, Entry& entry, uint64_t now_ms) {
  int ifindex = 0;
  uint32_t next_hop = 0;
  unsigned device = 0;
  const bool routed = route(destination, ifindex, next_hop);
  while (routed && device < ifindexes_.size() && ifindexes_[device] != ifindex) device++;
  if (!routed || device == ifindexes_.size()) {
    // No route, or one through a device the backend does not own: nothing to send with.
    entry.state = State::Unreachable;
    entry.next_check_ms = now_ms + kRecheckUnreachableMs;
    return;
  }
  uint8_t mac[6];
  const int state = neighbour(ifindex, next_hop, mac);
  if (state & kNudUsable) {
    entry.state = State::Resolved;
    entry.hop.device = device;
    std::memcpy(entry.hop.mac, mac, 6);
    entry.next_check_ms = now_ms + kRecheckResolvedMs;
    entry.unresolved_since_ms = 0;
    if (state & NUD_STALE) probe(ifindex, next_hop);
    return;
  }
  // Unknown, incomplete or failed: ask the kernel to resolve it. A resolved entry keeps its
  // MAC while the kernel re-resolves; a failed one is given up.
  probe(ifindex, next_hop);
  if (entry.unresolved_since_ms == 0) entry.unresolved_since_ms = now_ms;
  if (entry.state != State::Resolved || (state & NUD_FAILED) || entry.hop.device != device) entry.state = State::Pending;
  const bool fresh = now_ms < entry.unresolved_since_ms + kPendingFastMs;
  entry.next_check_ms = now_ms + (fresh ? kRecheckPendingMs : kRecheckSilentMs);
  waiting_ = waiting_ || fresh;
}

bool NeighbourTable::route(uint32_t destination, int& ifindex, uint32_t& next_hop) {
  Request r{};
  r.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  r.header.nlmsg_type = RTM_GETROUTE;
  r.header.nlmsg_flags = NLM_F_REQUEST;
  r.route.rtm_family = AF_INET;
  r.route.rtm_dst_len = 32;
  add_attribute(r, RTA_DST, &destination, 4);
  alignas(nlmsghdr) char reply[1024];
  if (!request(&r, r.header.nlmsg_len, RTM_NEWROUTE, reply, sizeof(reply))) return false;
  const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(reply);
  const rtmsg* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
  int length = static_cast<int>(RTM_PAYLOAD(h));
  ifindex = 0;
  next_hop = destination;
  for (const rtattr* a = RTM_RTA(m); RTA_OK(a, length); a = RTA_NEXT(a, length)) {
    if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4) std::memcpy(&ifindex, RTA_DATA(a), 4);
    if (a->rta_type == RTA_GATEWAY && RTA_PAYLOAD(a) >= 4) std::memcpy(&next_hop, RTA_DATA(a), 4);
  }
  return ifindex != 0 && m->rtm_type == RTN_UNICAST;
}

// The neighbour's NUD state (0 when the kernel has no entry) and, when it has one, its MAC.
int NeighbourTable::neighbour(int ifindex, uint32_t address, uint8_t* mac) {
  Request r{};
  r.header.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  r.header.nlmsg_type = RTM_GETNEIGH;
  r.header.nlmsg_flags = NLM_F_REQUEST;
  r.neighbour.ndm_family = AF_INET;
  r.neighbour.ndm_ifindex = ifindex;
  add_attribute(r, NDA_DST, &address, 4);
  alignas(nlmsghdr) char reply[1024];
  if (!request(&r, r.header.nlmsg_len, RTM_NEWNEIGH, reply, sizeof(reply))) return 0;
  const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(reply);
  const ndmsg* m = static_cast<const ndmsg*>(NLMSG_DATA(h));
  int length = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
  bool has_mac = false;
  for (const rtattr* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(m) + NLMSG_ALIGN(sizeof(ndmsg)));
       RTA_OK(a, length); a = RTA_NEXT(a, length)) {
    if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
      std::memcpy(mac, RTA_DATA(a), 6);
      has_mac = true;
    }
  }
  return has_mac ? m->ndm_state : (m->ndm_state & ~kNudUsable);
}

// NTF_USE: the kernel creates the entry if needed and resolves (or re-confirms) it, as if it
// had a packet to send there. No reply is asked for.
void NeighbourTable::probe(int ifindex, uint32_t address) {
  Request r{};
  r.header.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  r.header.nlmsg_type = RTM_NEWNEIGH;
  r.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE;
  r.header.nlmsg_seq = ++sequence_;
  r.neighbour.ndm_family = AF_INET;
  r.neighbour.ndm_ifindex = ifindex;
  r.neighbour.ndm_flags = NTF_USE;
  add_attribute(r, NDA_DST, &address, 4);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  sendto(socket_, &r, r.header.nlmsg_len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
}

// Sends one request and copies the reply of type `expect_type` with its sequence number into
// `reply`; skips answers to earlier requests (e.g. a probe's error). False on error or no reply.
bool NeighbourTable::request(void* message, uint32_t length, int expect_type, void* reply, uint32_t reply_size) {
  nlmsghdr* header = static_cast<nlmsghdr*>(message);
  header->nlmsg_seq = ++sequence_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(socket_, message, length, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) return false;
  alignas(nlmsghdr) char buffer[8192];
  for (int reads = 0; reads < 16; reads++) {
    const ssize_t got = recv(socket_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got <= 0) return false;
    int left = static_cast<int>(got);
    for (const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != header->nlmsg_seq) continue;
      if (h->nlmsg_type != expect_type || h->nlmsg_len > reply_size) return false;
      std::memcpy(reply, h, h->nlmsg_len);
      return true;
    }
  }
  return false;
}

}  // namespace rtphub
