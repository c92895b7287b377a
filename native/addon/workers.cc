#include "workers.h"

#include "convert.h"

namespace video_rnn::addon {

EngineWorker::EngineWorker(Napi::Env env, std::shared_ptr<Engine> engine, Work work, Resolve resolve,
                           std::vector<Napi::ObjectReference> keep_alive)
    : Napi::AsyncWorker(env, "video-rnn"),
      deferred_(Napi::Promise::Deferred::New(env)),
      engine_(std::move(engine)),
      work_(std::move(work)),
      resolve_(std::move(resolve)),
      keep_alive_(std::move(keep_alive)) {}

Napi::Promise EngineWorker::Run(Napi::Env env, std::shared_ptr<Engine> engine, Work work, Resolve resolve,
                                std::vector<Napi::ObjectReference> keep_alive) {
  auto* worker = new EngineWorker(env, std::move(engine), std::move(work), std::move(resolve), std::move(keep_alive));
  auto promise = worker->deferred_.Promise();
  worker->Queue();
  return promise;
}

void EngineWorker::Execute() {
  // Every exception must end here: one escaping a pool thread would abort the process.
  try {
    work_();
  } catch (const c10::Error& error) {
    fail(error.what_without_backtrace());
  } catch (const std::exception& error) {
    fail(error.what());
  } catch (...) {
    fail("unknown native error");
  }
}

void EngineWorker::fail(const std::string& message) {
  failed_ = true;
  failure_ = message.empty() ? "LibTorch failed without an error message" : message;
  // AsyncWorker calls OnOK when the message it was given is empty: never give it an empty one.
  SetError(failure_);
}

void EngineWorker::OnOK() {
  Napi::HandleScope scope(Env());
  if (failed_) {
    deferred_.Reject(coded_error(Env(), "E_NATIVE", failure_).Value());
    return;
  }
  try {
    deferred_.Resolve(resolve_(Env()));
  } catch (const Napi::Error& error) {
    deferred_.Reject(error.Value());
  } catch (const std::exception& error) {
    deferred_.Reject(coded_error(Env(), "E_NATIVE", error.what()).Value());
  }
}

void EngineWorker::OnError(const Napi::Error&) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(coded_error(Env(), "E_NATIVE", failure_).Value());
}

}  // namespace video_rnn::addon
