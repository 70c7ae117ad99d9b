// Ethernet/IPv4/UDP headers as the AF_XDP backend reads and writes them. The XDP program has
// already picked the frames, but the frame is still network input: every field is bounds-checked
// here again, and anything off (truncated headers, lengths that disagree, fragments, a bad IP
// header checksum) is Malformed, a counted drop. Pure functions over bytes, no state.
//
// The UDP checksum of a received frame is not checked: on veth (and with checksum offload in
// general) the sender's stack leaves it partial, and the kernel would have accepted the packet.
#pragma once

#include <cstdint>
#include <cstring>

namespace rtphub {
namespace xdp {

constexpr uint32_t kEthHeader = 14;
constexpr uint32_t kIpv4Header = 20;
constexpr uint32_t kUdpHeader = 8;
constexpr uint32_t kHeaders = kEthHeader + kIpv4Header + kUdpHeader;  // what transmit writes

enum class Parse : uint8_t { Ok, Malformed };

struct Datagram {
  uint32_t source_ip;       // network byte order
  uint32_t destination_ip;  // network byte order
  uint16_t source_port;     // host byte order
  uint16_t destination_port;
  uint8_t tos;
  uint32_t payload_offset;  // from the start of the frame
  uint32_t payload_length;
};

inline uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Ones' complement sum of 16-bit big-endian words, not yet folded.
inline uint64_t sum16(const uint8_t* p, uint32_t length, uint64_t sum = 0) {
  for (; length >= 2; p += 2, length -= 2) sum += load16(p);
  if (length) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}

inline uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

inline Parse parse_ipv4_udp(const uint8_t* frame, uint32_t length, Datagram& out) {
  if (length < kHeaders || load16(frame + 12) != 0x0800) return Parse::Malformed;
  const uint8_t* ip = frame + kEthHeader;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  if ((ip[0] >> 4) != 4 || ihl < kIpv4Header || ip[9] != 17) return Parse::Malformed;
  const uint32_t total = load16(ip + 2);
  if (total < ihl + kUdpHeader || kEthHeader + total > length) return Parse::Malformed;
  if (load16(ip + 6) & 0x3fff) return Parse::Malformed;  // a fragment: the program passes those
  if (fold(sum16(ip, ihl)) != 0xffff) return Parse::Malformed;
  const uint8_t* udp = ip + ihl;
  const uint32_t udp_length = load16(udp + 4);
  if (udp_length < kUdpHeader || udp_length > total - ihl) return Parse::Malformed;
  std::memcpy(&out.source_ip, ip + 12, 4);
  std::memcpy(&out.destination_ip, ip + 16, 4);
  out.source_port = load16(udp);
  out.destination_port = load16(udp + 2);
  out.tos = ip[1];
  out.payload_offset = kEthHeader + ihl + kUdpHeader;
  out.payload_length = udp_length - kUdpHeader;
  return Parse::Ok;
}

struct Route {
  uint8_t destination_mac[6];
  uint8_t source_mac[6];
  uint32_t source_ip;  // network byte order
  uint32_t destination_ip;
  uint16_t source_port;  // host byte order
  uint16_t destination_port;
  uint8_t tos;
  uint16_t ip_id;
  bool udp_checksum;
};

// Writes the kHeaders bytes in front of a payload of `length` bytes that starts at out + kHeaders.
inline void write_ipv4_udp(uint8_t* out, uint32_t length, const Route& r) {
  std::memcpy(out, r.destination_mac, 6);
  std::memcpy(out + 6, r.source_mac, 6);
  store16(out + 12, 0x0800);
  uint8_t* ip = out + kEthHeader;
  ip[0] = 0x45;
  ip[1] = r.tos;
  store16(ip + 2, static_cast<uint16_t>(kIpv4Header + kUdpHeader + length));
  store16(ip + 4, r.ip_id);
  store16(ip + 6, 0x4000);  // DF, as the kernel sets it on small UDP datagrams
  ip[8] = 64;
  ip[9] = 17;
  store16(ip + 10, 0);
  std::memcpy(ip + 12, &r.source_ip, 4);
  std::memcpy(ip + 16, &r.destination_ip, 4);
  store16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, kIpv4Header))));
  uint8_t* udp = ip + kIpv4Header;
  store16(udp, r.source_port);
  store16(udp + 2, r.destination_port);
  store16(udp + 4, static_cast<uint16_t>(kUdpHeader + length));
  store16(udp + 6, 0);
  if (!r.udp_checksum) return;
  // Pseudo-header (addresses, protocol, UDP length), then the UDP header and payload.
  uint64_t sum = sum16(ip + 12, 8);
  sum += 17 + kUdpHeader + length;
  sum = sum16(udp, kUdpHeader + length, sum);
  const uint16_t checksum = static_cast<uint16_t>(~fold(sum));
  store16(udp + 6, checksum == 0 ? 0xffff : checksum);
}

}  // namespace xdp
}  // namespace rtphub
