#pragma once
// The JavaScript handle of one Engine. Every method that computes returns a Promise.
#include <napi.h>

#include <memory>

#include "engine.h"

namespace video_rnn::addon {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // createModel(config): builds the engine on a pool thread, resolves to a ModelWrap.
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

 private:
  std::shared_ptr<Engine> engine(const Napi::Env& env) const;
  void release(Napi::Env env);

  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value ConfigureTraining(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value Shapes(const Napi::CallbackInfo& info);
  Napi::Value LoadState(const Napi::CallbackInfo& info);
  Napi::Value LoadStateFile(const Napi::CallbackInfo& info);
  Napi::Value Fingerprint(const Napi::CallbackInfo& info);
  Napi::Value IsCached(const Napi::CallbackInfo& info);
  Napi::Value ClearCache(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value JoinGroup(const Napi::CallbackInfo& info);
  Napi::Value SumOverRanks(const Napi::CallbackInfo& info);
  // In optimizer_state_wrap.cc.
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);

  std::shared_ptr<Engine> engine_;
  int64_t external_bytes_ = 0;
};

}  // namespace video_rnn::addon
