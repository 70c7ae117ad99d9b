// Built instead of uring_backend.cc when liburing is missing: the io_uring backend reports
// itself absent and the engine falls back to epoll.
#include "backend.h"

namespace rtphub {

bool uring_backend_built() { return false; }

std::unique_ptr<Backend> make_uring_backend(const BackendConfig&, int, std::string& error) {
  error = "this build has no io_uring backend (liburing-dev was missing at build time)";
  return nullptr;
}

}  // namespace rtphub
