// Per-environment state of the addon (no static globals: the addon may be loaded by several
// worker threads, each with its own environment): the error classes the TypeScript side
// registered, by engine error code.
#pragma once

#include <napi.h>

#include <map>
#include <string>

#include "../dataplane/engine_error.h"

namespace rtphub {

struct AddonData {
  std::map<std::string, Napi::FunctionReference> error_classes;
  Napi::FunctionReference engine_constructor;
};

// Throws the registered TypeScript error class for `code` (a plain Error with .code if none).
Napi::Object init(Napi::Env env, Napi::Object exports);

[[noreturn]] void throw_engine_error(Napi::Env env, ErrorCode code, const std::string& message);

}  // namespace rtphub
