// Built instead of the AF_XDP backend when libxdp, libbpf or clang was missing at build time.
#include "backend.h"

namespace rtphub {

bool xdp_backend_built() { return false; }

std::unique_ptr<Backend> make_xdp_backend(const BackendConfig&, int, std::string& error) {
  error = "this build has no AF_XDP backend (libxdp-dev, libbpf-dev or clang was missing at build time)";
  return nullptr;
}

}  // namespace rtphub
