// Record layout, version 1 (integers big-endian, counters as LEB128 varints):
//   'R' 'H' version:u8 flags:u8(bit0 standby)
//   leg x2:
//     local: endpoint        flags:u8(bit0 rtcp-mux, bit1 strict, bit2 asymmetric)  learning:u8
//     rtp latch: remote endpoint, signalled endpoint, state:u8, priority:u8
//     rtcp latch: (same)
//     counters: count:u8 then count varints (a newer writer may send more: extras are skipped)
//   endpoint = family:u8 (0 none, 4, 6) [address:4|16 port:u16]
// A tentative latch keeps its endpoint but restarts its learning window on the importing relay.
#include "record.h"

#include <cstring>

namespace rtphub {
namespace {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      u8(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    u8(static_cast<uint8_t>(v));
  }
  void bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void endpoint(const Endpoint& e) {
    if (e.family() == AF_INET) {
      u8(4);
      bytes(&e.addr.v4.sin_addr, 4);
    } else if (e.family() == AF_INET6) {
      u8(6);
      bytes(&e.addr.v6.sin6_addr, 16);
    } else {
      u8(0);
      return;
    }
    u16(e.port());
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t length) : p_(data), end_(data + length) {}
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool done() const { return p_ == end_; }

  uint8_t u8() {
    if (!need(1, "truncated")) return 0;
    return *p_++;
  }
  uint16_t u16() {
    const uint16_t hi = u8();
    return static_cast<uint16_t>((hi << 8) | u8());
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      const uint8_t b = u8();
      if (failed()) return 0;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 64 bits");
    return 0;
  }
  Endpoint endpoint() {
    Endpoint e;
    const uint8_t family = u8();
    if (family == 0 || failed()) return e;
    if (family == 4) {
      if (!need(4, "truncated IPv4 address")) return e;
      e.addr.v4.sin_family = AF_INET;
      std::memcpy(&e.addr.v4.sin_addr, p_, 4);
      p_ += 4;
    } else if (family == 6) {
      if (!need(16, "truncated IPv6 address")) return e;
      e.addr.v6.sin6_family = AF_INET6;
      std::memcpy(&e.addr.v6.sin6_addr, p_, 16);
      p_ += 16;
    } else {
      fail("unknown address family " + std::to_string(family));
      return e;
    }
    e.set_port(u16());
    return e;
  }
  void fail(const std::string& why) {
    if (error_.empty()) error_ = why;
  }

 private:
  bool need(size_t n, const char* why) {
    if (failed()) return false;
    if (static_cast<size_t>(end_ - p_) < n) {
      fail(why);
      return false;
    }
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  std::string error_;
};

void write_latch(Writer& w, const Latch& latch) {
  w.endpoint(latch.remote);
  w.endpoint(latch.signalled);
  w.u8(static_cast<uint8_t>(latch.state));
  w.u8(latch.priority);
}

void read_latch(Reader& r, Latch& latch) {
  latch.remote = r.endpoint();
  latch.signalled = r.endpoint();
  const uint8_t state = r.u8();
  latch.priority = r.u8();
  if (state > static_cast<uint8_t>(LatchState::Locked)) r.fail("unknown latch state " + std::to_string(state));
  if (latch.priority > 3) r.fail("latch priority out of range");
  latch.state = static_cast<LatchState>(state);
  if (latch.state == LatchState::Tentative) latch.state = LatchState::Unlearned;
  latch.deadline_ms = 0;
}

void write_leg(Writer& w, const LegRecord& leg) {
  const LegState& s = leg.state;
  w.endpoint(s.local);
  w.u8(static_cast<uint8_t>((s.rtcp_mux ? 1 : 0) | (s.strict_source ? 2 : 0) | (s.asymmetric ? 4 : 0)));
  w.u8(static_cast<uint8_t>(s.learning));
  write_latch(w, s.rtp);
  write_latch(w, s.rtcp);
  w.u8(static_cast<uint8_t>(kLegCounterCount));
  for (uint64_t c : leg.counters) w.varint(c);
}

void read_leg(Reader& r, LegRecord& leg) {
  LegState& s = leg.state;
  s.local = r.endpoint();
  if (!r.failed() && (!s.local.known() || s.local.port() == 0)) r.fail("leg has no local address and port");
  const uint8_t flags = r.u8();
  if (flags & ~7u) r.fail("unknown leg flags");
  s.rtcp_mux = flags & 1;
  s.strict_source = flags & 2;
  s.asymmetric = flags & 4;
  const uint8_t learning = r.u8();
  if (learning > static_cast<uint8_t>(Learning::Heuristic)) r.fail("unknown learning mode " + std::to_string(learning));
  s.learning = static_cast<Learning>(learning);
  read_latch(r, s.rtp);
  read_latch(r, s.rtcp);
  const uint8_t count = r.u8();
  for (unsigned i = 0; i < count && !r.failed(); i++) {
    const uint64_t value = r.varint();
    if (i < kLegCounterCount) leg.counters[i] = value;
  }
}

}  // namespace

std::string encode_record(const StreamRecord& record) {
  Writer w;
  w.u8('R');
  w.u8('H');
  w.u8(kRecordFormatVersion);
  w.u8(record.standby ? 1 : 0);
  for (const LegRecord& leg : record.legs) write_leg(w, leg);
  return w.take();
}

bool decode_record(const uint8_t* data, size_t length, StreamRecord& out, std::string& error) {
  Reader r(data, length);
  StreamRecord record;
  if (r.u8() != 'R' || r.u8() != 'H') r.fail("not a restoration record (bad magic)");
  const uint8_t version = r.u8();
  if (!r.failed() && (version == 0 || version > kRecordFormatVersion))
    r.fail("unsupported record format version " + std::to_string(version));
  const uint8_t flags = r.u8();
  if (flags & ~1u) r.fail("unknown record flags");
  record.standby = flags & 1;
  for (LegRecord& leg : record.legs) read_leg(r, leg);
  if (!r.failed() && !r.done()) r.fail("trailing bytes after the record");
  if (r.failed()) {
    error = "invalid restoration record: " + r.error();
    return false;
  }
  out = record;
  return true;
}

}  // namespace rtphub
