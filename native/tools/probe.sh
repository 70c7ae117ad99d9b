#!/bin/sh
# Build-time probe used by binding.gyp: prints 1 when an optional system library can be
# compiled and linked against, 0 otherwise, and says which on stderr so the build log shows it.
lib="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$lib" in
  liburing)
    printf '#include <liburing.h>\nint main(void){struct io_uring r; return io_uring_queue_init(8,&r,0) && 0;}\n' > "$tmp/p.c"
    if ${CC:-cc} "$tmp/p.c" -o "$tmp/p" -luring >/dev/null 2>&1; then
      echo "rtphub: liburing found: building the io_uring and epoll backends" >&2; echo 1
    else
      echo "rtphub: liburing NOT found (apt-get install liburing-dev): building the epoll backend alone" >&2; echo 0
    fi ;;
  libxdp)
    # The AF_XDP backend needs libxdp and libbpf to link and clang to build its XDP program.
    printf '#include <xdp/xsk.h>\n#include <bpf/libbpf.h>\nint main(void){return xsk_umem__delete(0) && libbpf_major_version() && 0;}\n' > "$tmp/p.c"
    if ! command -v clang >/dev/null 2>&1; then
      echo "rtphub: clang NOT found (apt-get install clang libxdp-dev libbpf-dev): building without the AF_XDP backend" >&2; echo 0
    elif ${CC:-cc} "$tmp/p.c" -o "$tmp/p" -lxdp -lbpf >/dev/null 2>&1; then
      echo "rtphub: libxdp, libbpf and clang found: building the AF_XDP backend" >&2; echo 1
    else
      echo "rtphub: libxdp/libbpf NOT found (apt-get install libxdp-dev libbpf-dev clang): building without the AF_XDP backend" >&2; echo 0
    fi ;;
  *) echo 0 ;;
esac
