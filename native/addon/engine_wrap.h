// The Engine class seen from JavaScript: argument checks, conversions, error mapping, and the
// thread-safe function through which workers' event batches reach the JS thread. The engine's
// lifetime never depends on GC: close() (idempotent) or the environment's cleanup hook stops
// the workers and releases the thread-safe function.
#pragma once

#include <napi.h>

#include <memory>

#include "../dataplane/engine.h"

namespace rtphub {

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

 private:
  Napi::Value create_stream(const Napi::CallbackInfo& info);
  Napi::Value import_stream(const Napi::CallbackInfo& info);
  Napi::Value update_stream(const Napi::CallbackInfo& info);
  Napi::Value close_stream(const Napi::CallbackInfo& info);
  Napi::Value export_stream(const Napi::CallbackInfo& info);
  Napi::Value activate(const Napi::CallbackInfo& info);
  Napi::Value read_leg_counters(const Napi::CallbackInfo& info);
  Napi::Value read_engine_counters(const Napi::CallbackInfo& info);
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);

  Engine& engine(Napi::Env env);
  void deliver(Napi::Env env);
  void deliver_batch(Napi::Env env);
  void shutdown();
  static void cleanup_hook(void* self);
  Napi::Object allocation_object(Napi::Env env, const StreamAllocation& allocation);

  std::unique_ptr<Engine> engine_;
  Napi::ThreadSafeFunction events_;
  Napi::FunctionReference on_events_;
  Napi::Env env_;
  bool closed_ = false;
};

}  // namespace rtphub
