// Module entry: registers the Engine class, the counter name lists, and the hook through which
// the TypeScript side hands over its error classes (src/errors.ts).
#include <napi.h>

#include "../dataplane/announce.h"
#include "../dataplane/backend.h"
#include "../sessions/counters.h"
#include "addon_data.h"
#include "engine_wrap.h"

namespace rtphub {
namespace {

const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::PortsExhausted: return "PortsExhausted";
    case ErrorCode::NotFound: return "NotFound";
    case ErrorCode::Closed: return "Closed";
    case ErrorCode::RecordFormat: return "RecordFormat";
    case ErrorCode::System: return "System";
  }
  return "System";
}

Napi::Array names(Napi::Env env, const char* const* list, size_t count) {
  Napi::Array out = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; i++) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, list[i]));
  return out;
}

// announceAddress(ifname, address, count): gratuitous ARP / unsolicited NA; throws a System error.
Napi::Value announce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "announceAddress(ifname, address, count)");
  const int count = info[2].As<Napi::Number>().Int32Value();
  const std::string error = announce_address(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                             count < 1 ? 1 : (count > 10 ? 10 : count));
  if (!error.empty()) throw_engine_error(env, ErrorCode::System, error);
  return env.Undefined();
}

Napi::Value set_error_classes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "setErrorClasses expects an object of constructors");
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object classes = info[0].As<Napi::Object>();
  Napi::Array keys = classes.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    Napi::Value value = classes.Get(keys.Get(i));
    if (!value.IsFunction()) throw Napi::TypeError::New(env, "setErrorClasses: every value must be a class");
    data->error_classes[keys.Get(i).As<Napi::String>().Utf8Value()] = Napi::Persistent(value.As<Napi::Function>());
  }
  return env.Undefined();
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("Engine", EngineWrap::define(env));
  exports.Set("setErrorClasses", Napi::Function::New(env, set_error_classes, "setErrorClasses"));
  exports.Set("legCounterNames", names(env, kLegCounterNames, kLegCounterCount));
  exports.Set("engineCounterNames", names(env, kEngineCounterNames, kEngineCounterCount));
  exports.Set("announceAddress", Napi::Function::New(env, announce, "announceAddress"));
  exports.Set("ioUringBuilt", Napi::Boolean::New(env, uring_backend_built()));
  exports.Set("afXdpBuilt", Napi::Boolean::New(env, xdp_backend_built()));
  return exports;
}

void throw_engine_error(Napi::Env env, ErrorCode code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  const char* name = code_name(code);
  auto it = data->error_classes.find(name);
  if (it != data->error_classes.end()) {
    Napi::Object error = it->second.New({Napi::String::New(env, message)});
    throw Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name));
  throw error;
}

}  // namespace rtphub

static Napi::Object register_module(Napi::Env env, Napi::Object exports) { return rtphub::init(env, exports); }

NODE_API_MODULE(rtphub_addon, register_module)
