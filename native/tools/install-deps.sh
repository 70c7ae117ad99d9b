#!/usr/bin/env bash
# Installs the Debian packages rtphub needs. Without flags: what building and running the relay
# needs (compiler, python3 for node-gyp, liburing-dev for the io_uring backend, libxdp-dev,
# libbpf-dev and clang for the AF_XDP backend and its XDP program). With --test:
# also the real peers the test suite and benchmarks run against (rtpengine, iproute2, ...).
# Needs root (or sudo); safe to run again.
set -euo pipefail

packages=(g++ make python3 pkg-config liburing-dev libxdp-dev libbpf-dev clang)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(rtpengine-daemon rtpengine-utils kamailio kamailio-extra-modules sip-tester redis-server iproute2 iputils-ping procps util-linux)
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then as_root=(sudo); fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
