#include "model_wrap.h"

#include "convert.h"
#include "workers.h"

namespace video_rnn::addon {
namespace {

Napi::FunctionReference* constructor_reference(Napi::Env env) {
  return env.GetInstanceData<Napi::FunctionReference>();
}

Napi::Value batch_result(Napi::Env env, const BatchOutput& out) {
  auto result = Napi::Object::New(env);
  result.Set("probabilities", to_float32_array(env, out.probabilities));
  result.Set("classes", Napi::Number::New(env, static_cast<double>(out.probabilities.size(1))));
  result.Set("loss", Napi::Number::New(env, out.loss));
  result.Set("stepped", Napi::Boolean::New(env, out.stepped));
  return result;
}

using Clips = std::vector<ClipInput>;
using Labels = std::vector<int64_t>;
using BatchStep = BatchOutput (*)(Engine&, const Clips&, const Labels&);

// Predict, Evaluate and TrainStep: clips (and one label each when `labelled`) in, one batch out.
Napi::Value run_batch(const Napi::CallbackInfo& info, std::shared_ptr<Engine> engine, bool labelled, BatchStep step) {
  std::vector<Napi::ObjectReference> keep_alive;
  auto clips = to_clips(info[0], keep_alive);
  auto labels = labelled ? to_labels(info[1], clips.size()) : Labels{};
  auto out = std::make_shared<BatchOutput>();
  return EngineWorker::Run(info.Env(), engine,
      [engine, clips, labels, out, step] { *out = step(*engine, clips, labels); },
      [out](Napi::Env env) { return batch_result(env, *out); }, std::move(keep_alive));
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeModel", {
      InstanceMethod<&ModelWrap::Predict>("predict"),
      InstanceMethod<&ModelWrap::Evaluate>("evaluate"),
      InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
      InstanceMethod<&ModelWrap::Embed>("embed"),
      InstanceMethod<&ModelWrap::ConfigureTraining>("configureTraining"),
      InstanceMethod<&ModelWrap::GetState>("getState"),
      InstanceMethod<&ModelWrap::Shapes>("shapes"),
      InstanceMethod<&ModelWrap::LoadState>("loadState"),
      InstanceMethod<&ModelWrap::LoadStateFile>("loadStateFile"),
      InstanceMethod<&ModelWrap::Fingerprint>("fingerprint"),
      InstanceMethod<&ModelWrap::IsCached>("isCached"),
      InstanceMethod<&ModelWrap::ClearCache>("clearCache"),
      InstanceMethod<&ModelWrap::Counters>("counters"),
      InstanceMethod<&ModelWrap::Dispose>("dispose"),
      InstanceMethod<&ModelWrap::JoinGroup>("joinGroup"),
      InstanceMethod<&ModelWrap::SumOverRanks>("sumOverRanks"),
      InstanceMethod<&ModelWrap::GetOptimizerState>("getOptimizerState"),
      InstanceMethod<&ModelWrap::LoadOptimizerState>("loadOptimizerState"),
  });
}

Napi::Value ModelWrap::Create(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw coded_error(env, "E_INVALID_ARGUMENT", "createModel needs a config object");
  const EngineConfig config = to_engine_config(info[0].As<Napi::Object>());
  auto holder = std::make_shared<std::shared_ptr<Engine>>();
  return EngineWorker::Run(env, nullptr,
      [holder, config] { *holder = std::make_shared<Engine>(config); },
      [holder](Napi::Env env) -> Napi::Value {
        auto handle = Napi::External<std::shared_ptr<Engine>>::New(env, holder.get());
        return constructor_reference(env)->New({handle});
      });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    throw coded_error(info.Env(), "E_INVALID_ARGUMENT", "use createModel() to make a model");
  }
  engine_ = *info[0].As<Napi::External<std::shared_ptr<Engine>>>().Data();
  // Tell V8 about the weights, so that garbage-collection pressure reflects a model's real size.
  external_bytes_ = engine_->parameter_bytes();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
}

ModelWrap::~ModelWrap() {
  // Collected without dispose(): give back what the constructor added. This runs as a finaliser,
  // where napi_adjust_external_memory is allowed. Running workers hold their own reference to the
  // engine, which outlives this handle until they finish.
  release(Env());
}

void ModelWrap::release(Napi::Env env) {
  if (!engine_) return;
  engine_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(env, -external_bytes_);
  external_bytes_ = 0;
}

std::shared_ptr<Engine> ModelWrap::engine(const Napi::Env& env) const {
  if (!engine_) throw coded_error(env, "E_DISPOSED", "the model has been disposed");
  return engine_;
}

Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  return run_batch(info, engine(info.Env()), false,
      [](Engine& engine, const Clips& clips, const Labels&) { return engine.predict(clips); });
}

Napi::Value ModelWrap::Evaluate(const Napi::CallbackInfo& info) {
  return run_batch(info, engine(info.Env()), true,
      [](Engine& engine, const Clips& clips, const Labels& labels) { return engine.evaluate(clips, labels); });
}

Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  return run_batch(info, engine(info.Env()), true,
      [](Engine& engine, const Clips& clips, const Labels& labels) { return engine.train_step(clips, labels); });
}

Napi::Value ModelWrap::Embed(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  std::vector<Napi::ObjectReference> keep_alive;
  auto clips = to_clips(info[0], keep_alive);
  auto out = std::make_shared<std::vector<torch::Tensor>>();
  return EngineWorker::Run(info.Env(), engine,
      [engine, clips, out] { *out = engine->embed(clips); },
      [out](Napi::Env env) -> Napi::Value {
        auto array = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); ++i) array.Set(static_cast<uint32_t>(i), to_float32_array(env, (*out)[i]));
        return array;
      }, std::move(keep_alive));
}

Napi::Value ModelWrap::ConfigureTraining(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  if (info.Length() < 1 || !info[0].IsObject()) throw coded_error(info.Env(), "E_INVALID_ARGUMENT", "settings must be an object");
  auto settings = to_train_settings(info[0].As<Napi::Object>());
  return EngineWorker::Run(info.Env(), engine, [engine, settings] { engine->configure_training(settings); },
                           [](Napi::Env env) { return env.Undefined(); });
}

Napi::Value ModelWrap::GetState(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  // Optional: the names of parameters to leave out (an array of strings).
  std::set<std::string> skip;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsArray()) throw coded_error(info.Env(), "E_INVALID_ARGUMENT", "getState takes an array of parameter names to skip");
    auto array = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      if (!array.Get(i).IsString()) throw coded_error(info.Env(), "E_INVALID_ARGUMENT", "getState takes an array of parameter names to skip");
      skip.insert(array.Get(i).As<Napi::String>().Utf8Value());
    }
  }
  auto out = std::make_shared<NamedTensors>();
  return EngineWorker::Run(info.Env(), engine, [engine, out, skip] { *out = engine->state(skip); },
                           [out](Napi::Env env) -> Napi::Value { return to_js_named_tensors(env, *out); });
}

Napi::Value ModelWrap::Shapes(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto shapes = engine(env)->shapes();
  auto array = Napi::Array::New(env, shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto object = Napi::Object::New(env);
    object.Set("name", shapes[i].first);
    auto shape = Napi::Array::New(env, shapes[i].second.size());
    for (size_t d = 0; d < shapes[i].second.size(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(shapes[i].second[d])));
    object.Set("shape", shape);
    array.Set(static_cast<uint32_t>(i), object);
  }
  return array;
}

Napi::Value ModelWrap::LoadState(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  std::vector<Napi::ObjectReference> keep_alive;
  auto tensors = to_named_tensors(info[0], keep_alive);
  const std::string prefix = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  const bool require_all = info.Length() > 2 && info[2].ToBoolean().Value();
  return EngineWorker::Run(info.Env(), engine,
      [engine, tensors, prefix, require_all] { engine->load_state(tensors, prefix, require_all); },
      [](Napi::Env env) { return env.Undefined(); }, std::move(keep_alive));
}

Napi::Value ModelWrap::LoadStateFile(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto engine = this->engine(env);
  // (fd, path, ranges, prefix, requireAll): the caller keeps fd open until the Promise settles.
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    throw coded_error(env, "E_INVALID_ARGUMENT", "loadStateFile takes an open file descriptor and its path");
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const std::string path = info[1].As<Napi::String>().Utf8Value();
  auto ranges = to_tensor_ranges(info[2]);
  const std::string prefix = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  const bool require_all = info.Length() > 4 && info[4].ToBoolean().Value();
  return EngineWorker::Run(env, engine,
      [engine, fd, path, ranges, prefix, require_all] { engine->load_state(read_tensor_ranges(fd, path, ranges), prefix, require_all); },
      [](Napi::Env env) { return env.Undefined(); });
}

Napi::Value ModelWrap::Fingerprint(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  auto out = std::make_shared<std::string>();
  return EngineWorker::Run(info.Env(), engine, [engine, out] { *out = engine->backbone_fingerprint(); },
                           [out](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *out); });
}

Napi::Value ModelWrap::IsCached(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto engine = this->engine(env);
  if (info.Length() < 1 || !info[0].IsString()) throw coded_error(env, "E_INVALID_ARGUMENT", "a cache key must be a string");
  return Napi::Boolean::New(env, engine->is_cached(info[0].As<Napi::String>().Utf8Value()));
}

Napi::Value ModelWrap::ClearCache(const Napi::CallbackInfo& info) {
  engine(info.Env())->clear_cache();
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Counters(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto counters = engine(env)->counters();
  auto object = Napi::Object::New(env);
  object.Set("framesEmbedded", Napi::Number::New(env, static_cast<double>(counters.frames_embedded)));
  object.Set("cacheHits", Napi::Number::New(env, static_cast<double>(counters.cache_hits)));
  object.Set("cacheEntries", Napi::Number::New(env, static_cast<double>(counters.cache_entries)));
  object.Set("cacheBytes", Napi::Number::New(env, static_cast<double>(counters.cache_bytes)));
  // Milliseconds of wall time per native phase, summed over the calls so far (phase_times.h).
  const auto totals = engine(env)->phase_totals();
  static const char* const kPhaseNames[kPhaseCount] = {"normalize", "convolutions", "classifier", "sequence", "optimizer", "call"};
  auto phases = Napi::Object::New(env);
  for (int i = 0; i < kPhaseCount; ++i) phases.Set(kPhaseNames[i], Napi::Number::New(env, static_cast<double>(totals.nanoseconds[i]) / 1e6));
  object.Set("phaseMs", phases);
  object.Set("calls", Napi::Number::New(env, static_cast<double>(totals.calls)));
  // Convolution layers run per path (prepacked_features.h), in ConvolutionPath's order.
  static const char* const kPathNames[] = {"winogradAvx512", "winogradAvx2", "winogradBaseline", "onednn", "onednnBf16", "dense"};
  static_assert(sizeof(kPathNames) / sizeof(kPathNames[0]) == static_cast<size_t>(ConvolutionPath::kCount));
  auto paths = Napi::Object::New(env);
  for (size_t i = 0; i < counters.convolutions.size(); ++i) {
    paths.Set(kPathNames[i], Napi::Number::New(env, static_cast<double>(counters.convolutions[i])));
  }
  object.Set("convolutions", paths);
  object.Set("pooledFc6", Napi::Number::New(env, static_cast<double>(counters.pooled_fc6)));
  return object;
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value ModelWrap::JoinGroup(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  if (info.Length() < 1 || !info[0].IsObject()) throw coded_error(info.Env(), "E_INVALID_ARGUMENT", "a group config object is needed");
  auto config = to_distributed_config(info[0].As<Napi::Object>());
  return EngineWorker::Run(info.Env(), engine, [engine, config] { engine->join_group(config); },
                           [](Napi::Env env) { return env.Undefined(); });
}

Napi::Value ModelWrap::SumOverRanks(const Napi::CallbackInfo& info) {
  auto engine = this->engine(info.Env());
  auto values = to_doubles(info[0]);
  auto out = std::make_shared<std::vector<double>>();
  return EngineWorker::Run(info.Env(), engine, [engine, values, out] { *out = engine->sum_over_ranks(values); },
      [out](Napi::Env env) -> Napi::Value {
        auto array = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*out)[i]));
        return array;
      });
}

}  // namespace video_rnn::addon
