// Descriptor clean-up for commands that never reached a worker.
#include "command.h"

#include <unistd.h>

namespace rtphub {

void release_descriptors(StreamSetup& setup) {
  for (auto& leg : setup.legs) {
    if (leg.rtp_fd >= 0) close(leg.rtp_fd);
    if (leg.rtcp_fd >= 0) close(leg.rtcp_fd);
    leg.rtp_fd = leg.rtcp_fd = -1;
  }
}

}  // namespace rtphub
