// The relay's XDP program. It takes off the wire only what the AF_XDP backend forwards: IPv4
// UDP, not fragmented, to one of the relay's addresses and to a port inside the relay's range.
// Everything else (ARP, ICMP, IPv6, fragments, the ng socket, SIP, replication, other ports)
// goes to the kernel as usual. The XSK map is keyed by device slot * queues + receive queue,
// so sockets of two devices never share (or overwrite) an entry; the device slot comes from
// the ingress ifindex. A packet for a queue with no socket also goes to the kernel.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct relay_config {
  __u32 port_min;
  __u32 port_max;
  __u32 queues_per_device;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct relay_config);
} relay_config SEC(".maps");

// Key: IPv4 address in network byte order; value unused.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} relay_addresses SEC(".maps");

// Key: ifindex; value: the device's slot (0..63).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} relay_devices SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u32);
} relay_xsks SEC(".maps");

SEC("xdp")
int rtphub_xdp(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
  if (ip->frag_off & bpf_htons(0x3fff)) return XDP_PASS;  // MF or an offset: the kernel reassembles
  struct udphdr* udp = (void*)ip + ip->ihl * 4;
  if ((void*)(udp + 1) > end) return XDP_PASS;

  __u32 zero = 0;
  struct relay_config* config = bpf_map_lookup_elem(&relay_config, &zero);
  if (!config) return XDP_PASS;
  __u32 port = bpf_ntohs(udp->dest);
  if (port < config->port_min || port > config->port_max) return XDP_PASS;
  __u32 daddr = ip->daddr;
  if (!bpf_map_lookup_elem(&relay_addresses, &daddr)) return XDP_PASS;
  __u32 ifindex = ctx->ingress_ifindex;
  __u32* slot = bpf_map_lookup_elem(&relay_devices, &ifindex);
  if (!slot || ctx->rx_queue_index >= config->queues_per_device) return XDP_PASS;
  return bpf_redirect_map(&relay_xsks, *slot * config->queues_per_device + ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
