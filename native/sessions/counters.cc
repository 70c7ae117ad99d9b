// Names of the counters, in declaration order, for the addon to export.
#include "counters.h"

namespace rtphub {

#define RTPHUB_NAME_ENTRY(name) #name,
const char* const kLegCounterNames[kLegCounterCount] = {RTPHUB_LEG_COUNTERS(RTPHUB_NAME_ENTRY)};
const char* const kEngineCounterNames[kEngineCounterCount] = {RTPHUB_ENGINE_COUNTERS(RTPHUB_NAME_ENTRY)};
#undef RTPHUB_NAME_ENTRY

}  // namespace rtphub
