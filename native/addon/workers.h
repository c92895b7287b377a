#pragma once
// One AsyncWorker for every call: `work` runs on a pool thread and touches no JavaScript;
// `resolve` runs on the JavaScript thread and builds the result. LibTorch errors become a
// rejected Promise whose error has code E_NATIVE and LibTorch's message without the backtrace.
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "engine.h"

namespace video_rnn::addon {

class EngineWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Resolve = std::function<Napi::Value(Napi::Env)>;

  // Queues the work and returns its Promise. `engine` and `keep_alive` stay referenced until the
  // worker is done, so neither dispose() nor garbage collection can free what it reads.
  static Napi::Promise Run(Napi::Env env, std::shared_ptr<Engine> engine, Work work, Resolve resolve,
                           std::vector<Napi::ObjectReference> keep_alive = {});

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  EngineWorker(Napi::Env env, std::shared_ptr<Engine> engine, Work work, Resolve resolve,
               std::vector<Napi::ObjectReference> keep_alive);

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Engine> engine_;
  Work work_;
  Resolve resolve_;
  void fail(const std::string& message);

  std::vector<Napi::ObjectReference> keep_alive_;
  // Set on any failure, whatever its message: an empty message must still reject.
  bool failed_ = false;
  std::string failure_;
};

}  // namespace video_rnn::addon
