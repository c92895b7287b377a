// getOptimizerState() / loadOptimizerState(state): the optimiser's state as
// { tensors: [{name, shape, data}], steps: {name: count}, generator: Float32Array of the bytes }.
#include "convert.h"
#include "model_wrap.h"
#include "workers.h"

namespace video_rnn::addon {

Napi::Value ModelWrap::GetOptimizerState(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  auto out = std::make_shared<OptimizerState>();
  return EngineWorker::Run(info.Env(), engine, [engine, out] { *out = engine->optimizer_state(); },
      [out](Napi::Env env) -> Napi::Value {
        auto object = Napi::Object::New(env);
        object.Set("tensors", to_js_named_tensors(env, out->tensors));
        auto steps = Napi::Object::New(env);
        for (const auto& [name, step] : out->steps) steps.Set(name, Napi::Number::New(env, static_cast<double>(step)));
        object.Set("steps", steps);
        // Bytes 0..255 are exact in float32.
        object.Set("generator", to_float32_array(env, out->cpu_generator.to(torch::kFloat).contiguous()));
        return object;
      });
}

Napi::Value ModelWrap::LoadOptimizerState(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto engine = this->engine(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw coded_error(env, "E_INVALID_ARGUMENT", "an optimizer state object is needed");
  auto object = info[0].As<Napi::Object>();
  std::vector<Napi::ObjectReference> keep_alive;
  OptimizerState state;
  state.tensors = to_named_tensors(object.Get("tensors"), keep_alive);
  if (!object.Get("steps").IsObject()) throw coded_error(env, "E_INVALID_ARGUMENT", "steps must be an object");
  auto steps = object.Get("steps").As<Napi::Object>();
  auto names = steps.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    auto value = steps.Get(name);
    if (!value.IsNumber() || value.As<Napi::Number>().DoubleValue() < 0) {
      throw coded_error(env, "E_INVALID_ARGUMENT", "the step count of " + name + " must be a non-negative integer");
    }
    state.steps[name] = value.As<Napi::Number>().Int64Value();
  }
  auto generator = object.Get("generator");
  if (generator.IsTypedArray() && generator.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    auto floats = generator.As<Napi::Float32Array>();
    state.cpu_generator = torch::from_blob(floats.Data(), {static_cast<int64_t>(floats.ElementLength())}, torch::kFloat).to(torch::kUInt8);
  }
  return EngineWorker::Run(env, engine, [engine, state] { engine->load_optimizer_state(state); },
                           [](Napi::Env env) { return env.Undefined(); }, std::move(keep_alive));
}

}  // namespace video_rnn::addon
