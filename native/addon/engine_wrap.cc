// EngineWrap: JS <-> C++ conversions for the engine. Values arriving here were validated by
// the TypeScript facade; they are checked again, and anything off is a TypeError.
#include "engine_wrap.h"

#include "addon_data.h"

namespace rtphub {
namespace {

uint32_t u32(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(d);
}

// A leg arrives as a flat array (see NativeLeg in src/native/binding.ts), read by index: no
// property-name strings to create and look up on every stream command.
enum LegIndex : uint32_t {
  kLegAddress,
  kLegPort,
  kLegRtcpMux,
  kLegStrictSource,
  kLegAsymmetric,
  kLegLearning,
  kLegClockRate,
  kLegRemoteAddress,
  kLegRemotePort,
  kLegRemoteRtcpAddress,
  kLegRemoteRtcpPort,
  kLegFields,
  kLegLength,
};

Endpoint endpoint(const Napi::Array& a, uint32_t address_index, uint32_t port_index, const char* what) {
  Endpoint e;
  const Napi::Value address = a.Get(address_index);
  if (address.IsNull() || address.IsUndefined()) return e;
  const uint32_t port = u32(a.Get(port_index), what);
  if (!address.IsString() || port > 65535 ||
      !Endpoint::parse(address.As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), e))
    throw Napi::TypeError::New(a.Env(), std::string(what) + ": not a valid IP address and port");
  return e;
}

LegRequest leg_request(const Napi::Value& value) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != kLegLength)
    throw Napi::TypeError::New(value.Env(), "a leg must be an array of " + std::to_string(kLegLength) + " values");
  const Napi::Array a = value.As<Napi::Array>();
  LegRequest leg;
  LegState& s = leg.state;
  const Napi::Value address = a.Get(kLegAddress);
  const uint32_t port = u32(a.Get(kLegPort), "port");
  if (port > 65535 || (port & 1)) throw Napi::TypeError::New(a.Env(), "a local RTP port must be even and below 65536");
  if (address.IsString() && !Endpoint::parse(address.As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), s.local))
    throw Napi::TypeError::New(a.Env(), "address: not an IP address");
  s.rtcp_mux = a.Get(kLegRtcpMux).ToBoolean().Value();
  s.strict_source = a.Get(kLegStrictSource).ToBoolean().Value();
  s.asymmetric = a.Get(kLegAsymmetric).ToBoolean().Value();
  const uint32_t learning = u32(a.Get(kLegLearning), "learning");
  if (learning > 3) throw Napi::TypeError::New(a.Env(), "learning must be 0..3");
  s.learning = static_cast<Learning>(learning);
  s.clock_rate = u32(a.Get(kLegClockRate), "clockRate");
  if (s.clock_rate > 1000000) throw Napi::TypeError::New(a.Env(), "clockRate must be 0..1000000");
  s.rtp.signalled = endpoint(a, kLegRemoteAddress, kLegRemotePort, "remote");
  s.rtcp.signalled = endpoint(a, kLegRemoteRtcpAddress, kLegRemoteRtcpPort, "remoteRtcp");
  leg.fields = u32(a.Get(kLegFields), "fields");
  return leg;
}

Napi::Object endpoint_object(Napi::Env env, const Endpoint& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::String::New(env, e.address_string()));
  o.Set("port", Napi::Number::New(env, e.port()));
  return o;
}

const char* event_name(EventType type) {
  switch (type) {
    case EventType::Done: return "done";
    case EventType::Closed: return "closed";
    case EventType::Exported: return "exported";
    case EventType::Learned: return "learned";
    case EventType::Idle: return "idle";
    case EventType::None: break;
  }
  return "none";
}

}  // namespace

Napi::Function EngineWrap::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Engine",
                                    {
                                        InstanceMethod("createStream", &EngineWrap::create_stream),
                                        InstanceMethod("importStream", &EngineWrap::import_stream),
                                        InstanceMethod("updateStream", &EngineWrap::update_stream),
                                        InstanceMethod("closeStream", &EngineWrap::close_stream),
                                        InstanceMethod("exportStream", &EngineWrap::export_stream),
                                        InstanceMethod("activate", &EngineWrap::activate),
                                        InstanceMethod("readLegCounters", &EngineWrap::read_leg_counters),
                                        InstanceMethod("readEngineCounters", &EngineWrap::read_engine_counters),
                                        InstanceMethod("info", &EngineWrap::info),
                                        InstanceMethod("close", &EngineWrap::close),
                                    });
  env.GetInstanceData<AddonData>()->engine_constructor = Napi::Persistent(ctor);
  return ctor;
}

EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "new Engine(options, onEvents) expects an object and a function");
  const Napi::Object o = info[0].As<Napi::Object>();
  EngineConfig config;
  const Napi::Value interfaces = o.Get("interfaces");
  if (interfaces.IsArray()) {
    config.interfaces.clear();
    const Napi::Array list = interfaces.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      if (!list.Get(i).IsString()) throw Napi::TypeError::New(env, "interfaces must be strings");
      config.interfaces.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    }
  }
  const uint32_t port_min = u32(o.Get("portMin"), "portMin");
  const uint32_t port_max = u32(o.Get("portMax"), "portMax");
  if (port_min > 65535 || port_max > 65535) throw Napi::TypeError::New(env, "ports must be below 65536");
  config.port_min = static_cast<uint16_t>(port_min);
  config.port_max = static_cast<uint16_t>(port_max);
  config.threads = u32(o.Get("threads"), "threads");
  config.coalesce_us = u32(o.Get("coalesceUs"), "coalesceUs");
  config.worker.idle_timeout_ms = u32(o.Get("idleTimeoutMs"), "idleTimeoutMs");
  config.worker.learning_window_ms = u32(o.Get("learningWindowMs"), "learningWindowMs");
  if (o.Has("maxSocketsPerWorker")) config.max_sockets_per_worker = u32(o.Get("maxSocketsPerWorker"), "maxSocketsPerWorker");
  if (o.Get("backend").IsString()) config.backend = o.Get("backend").As<Napi::String>().Utf8Value();
  const Napi::Value xdp_devices = o.Get("xdpDevices");
  if (xdp_devices.IsArray()) {
    const Napi::Array list = xdp_devices.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      if (!list.Get(i).IsString()) throw Napi::TypeError::New(env, "xdpDevices must be strings");
      config.xdp.devices.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    }
  }
  if (o.Has("xdpFrames")) config.xdp.frames = u32(o.Get("xdpFrames"), "xdpFrames");
  if (o.Has("xdpRingSize")) config.xdp.ring_size = u32(o.Get("xdpRingSize"), "xdpRingSize");
  if (o.Has("xdpUdpChecksum")) config.xdp.udp_checksum = o.Get("xdpUdpChecksum").ToBoolean().Value();

  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
  events_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "rtphub-events", 0, 1);
  try {
    engine_.reset(new Engine(config, [this] {
      events_.NonBlockingCall([this](Napi::Env env, Napi::Function) { deliver(env); });
    }));
  } catch (const EngineError& e) {
    events_.Release();
    closed_ = true;
    throw_engine_error(env, e.code(), e.what());
  }
  napi_add_env_cleanup_hook(env, &EngineWrap::cleanup_hook, this);
}

EngineWrap::~EngineWrap() {
  if (!closed_) napi_remove_env_cleanup_hook(env_, &EngineWrap::cleanup_hook, this);
  shutdown();
}

void EngineWrap::cleanup_hook(void* self) {
  EngineWrap* wrap = static_cast<EngineWrap*>(self);
  wrap->shutdown();
}

// Stops the workers (joining them) and lets go of the thread-safe function. Never calls JS.
void EngineWrap::shutdown() {
  if (closed_) return;
  closed_ = true;
  engine_->shutdown();
  events_.Release();
}

Engine& EngineWrap::engine(Napi::Env env) {
  if (closed_) throw_engine_error(env, ErrorCode::Closed, "the relay is closed");
  return *engine_;
}

void EngineWrap::deliver(Napi::Env env) {
  if (closed_) return;
  // While the environment is torn down (a worker thread terminated) every N-API call may fail and
  // node-addon-api turns that into a C++ exception: none may leave this libuv callback.
  try {
    deliver_batch(env);
  } catch (const Napi::Error& error) {
    // A throwing listener becomes an uncaught exception, as for any other callback.
    napi_fatal_exception(env, error.Value());
  } catch (...) {
  }
}

void EngineWrap::deliver_batch(Napi::Env env) {
  Napi::HandleScope scope(env);
  Napi::Array batch = Napi::Array::New(env);
  uint32_t n = 0;
  engine_->drain([&](uint32_t stream_id, Event& event) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", Napi::String::New(env, event_name(event.type)));
    o.Set("request", Napi::Number::New(env, event.request));
    o.Set("stream", Napi::Number::New(env, stream_id));
    o.Set("side", Napi::Number::New(env, event.side));
    o.Set("kind", Napi::Number::New(env, event.kind));
    o.Set("value", Napi::Number::New(env, static_cast<double>(event.value)));
    if (event.endpoint.known()) o.Set("endpoint", endpoint_object(env, event.endpoint));
    if (event.payload) o.Set("payload", Napi::Buffer<char>::Copy(env, event.payload->data(), event.payload->size()));
    batch.Set(n++, o);
  });
  if (n > 0) on_events_.Call({batch});
}

Napi::Object EngineWrap::allocation_object(Napi::Env env, const StreamAllocation& allocation) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("id", Napi::Number::New(env, allocation.id));
  Napi::Array legs = Napi::Array::New(env, 2);
  for (uint32_t side = 0; side < 2; side++) {
    Napi::Object leg = endpoint_object(env, allocation.legs[side].local);
    leg.Set("rtcpMux", Napi::Boolean::New(env, allocation.legs[side].rtcp_mux));
    legs.Set(side, leg);
  }
  result.Set("legs", legs);
  return result;
}

#define RTPHUB_CALL(env, expr)                   \
  try {                                          \
    expr;                                        \
  } catch (const EngineError& e) {               \
    throw_engine_error(env, e.code(), e.what()); \
  }

Napi::Value EngineWrap::create_stream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  const uint32_t request = u32(info[0], "request");
  LegRequest legs[2] = {leg_request(info[1]), leg_request(info[2])};
  StreamAllocation allocation;
  RTPHUB_CALL(env, allocation = e.create(request, legs, info[3].ToBoolean().Value()));
  return allocation_object(env, allocation);
}

Napi::Value EngineWrap::import_stream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  const uint32_t request = u32(info[0], "request");
  if (!info[1].IsBuffer()) throw Napi::TypeError::New(env, "importStream expects a Buffer record");
  const Napi::Buffer<uint8_t> record = info[1].As<Napi::Buffer<uint8_t>>();
  StreamAllocation allocation;
  RTPHUB_CALL(env, allocation = e.import_record(request, record.Data(), record.Length(), info[2].ToBoolean().Value()));
  return allocation_object(env, allocation);
}

Napi::Value EngineWrap::update_stream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  const uint32_t request = u32(info[0], "request");
  const uint32_t id = u32(info[1], "stream id");
  LegRequest legs[2] = {leg_request(info[2]), leg_request(info[3])};
  RTPHUB_CALL(env, e.update(request, id, legs));
  return env.Undefined();
}

Napi::Value EngineWrap::close_stream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  RTPHUB_CALL(env, e.close_stream(u32(info[0], "request"), u32(info[1], "stream id")));
  return env.Undefined();
}

Napi::Value EngineWrap::export_stream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  RTPHUB_CALL(env, e.export_stream(u32(info[0], "request"), u32(info[1], "stream id")));
  return env.Undefined();
}

Napi::Value EngineWrap::activate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  const uint32_t id = info[1].IsNumber() ? u32(info[1], "stream id") : kAllStreams;
  RTPHUB_CALL(env, e.activate(u32(info[0], "request"), id, info[2].ToBoolean().Value()));
  return Napi::Number::New(env, id == kAllStreams ? e.threads() : 1);
}

Napi::Value EngineWrap::read_leg_counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  const uint32_t id = u32(info[0], "stream id");
  const uint32_t side = u32(info[1], "side");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[2].As<Napi::Float64Array>().ElementLength() < kLegCounterCount)
    throw Napi::TypeError::New(env, "readLegCounters needs a Float64Array of legCounterNames.length");
  uint64_t values[kLegCounterCount];
  if (!e.read_leg_counters(id, side, values)) return Napi::Boolean::New(env, false);
  Napi::Float64Array out = info[2].As<Napi::Float64Array>();
  for (size_t i = 0; i < kLegCounterCount; i++) out[i] = static_cast<double>(values[i]);
  return Napi::Boolean::New(env, true);
}

Napi::Value EngineWrap::read_engine_counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[0].As<Napi::Float64Array>().ElementLength() < kEngineCounterCount)
    throw Napi::TypeError::New(env, "readEngineCounters needs a Float64Array of engineCounterNames.length");
  uint64_t values[kEngineCounterCount];
  e.read_engine_counters(values);
  Napi::Float64Array out = info[0].As<Napi::Float64Array>();
  for (size_t i = 0; i < kEngineCounterCount; i++) out[i] = static_cast<double>(values[i]);
  return env.Undefined();
}

Napi::Value EngineWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine& e = engine(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", Napi::String::New(env, e.backend_name()));
  o.Set("backendNote", Napi::String::New(env, e.backend_note()));
  o.Set("threads", Napi::Number::New(env, e.threads()));
  o.Set("portsInUse", Napi::Number::New(env, e.ports_in_use()));
  o.Set("portsTotal", Napi::Number::New(env, e.ports_total()));
  o.Set("streams", Napi::Number::New(env, e.live_streams()));
  return o;
}

Napi::Value EngineWrap::close(const Napi::CallbackInfo& info) {
  if (!closed_) {
    napi_remove_env_cleanup_hook(info.Env(), &EngineWrap::cleanup_hook, this);
    shutdown();
  }
  return info.Env().Undefined();
}

}  // namespace rtphub
