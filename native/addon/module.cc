// Entry point of the addon: createModel, backendInfo, buildConfig and the NativeModel class.
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/Version.h>

#include <dlfcn.h>

#include <algorithm>
#include <string>
#include <thread>

#include "model_wrap.h"
#include "workers.h"

namespace {

// The kernel family of the OpenBLAS that LibTorch loaded, or "" when the BLAS is not OpenBLAS.
// RTLD_NOLOAD: only looks at what is already mapped, never loads a library.
std::string OpenBlasCore() {
  for (const char* name : {"libopenblas.so.0", "libblas.so.3"}) {
    void* handle = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    using CoreName = char* (*)();
    auto core_name = reinterpret_cast<CoreName>(dlsym(handle, "openblas_get_corename"));
    std::string core = core_name != nullptr ? core_name() : "";
    dlclose(handle);
    if (!core.empty()) return core;
  }
  return "";
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto object = Napi::Object::New(env);
  object.Set("torchVersion", TORCH_VERSION);
  // The libstdc++ ABI this addon (and so the LibTorch it links) was compiled with.
  object.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI != 0));
  const bool cuda = torch::cuda::is_available();
  object.Set("cuda", cuda);
  object.Set("cudaDevices", Napi::Number::New(env, cuda ? static_cast<double>(torch::cuda::device_count()) : 0.0));
  object.Set("threads", Napi::Number::New(env, std::max(1u, std::thread::hardware_concurrency())));
  const std::string blas = OpenBlasCore();
  object.Set("openblasCore", blas.empty() ? env.Null() : Napi::String::New(env, blas));
  // LibTorch zips and pip wheels run their GEMMs on the MKL they bundle, not on the system BLAS.
  object.Set("mkl", Napi::Boolean::New(env, at::hasMKL()));
  return object;
}

// How LibTorch was built (at::show_config: compiler, CPU capability, oneDNN, BLAS, OpenMP): the
// text that torch.__config__.show() prints in Python.
Napi::Value BuildConfig(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::show_config());
}

// For the test suite: a worker whose work throws `message` as a c10::Error ("c10") or a
// std::runtime_error ("std"), so that rejection is checked for any message, the empty one included.
Napi::Value FailInWorker(const Napi::CallbackInfo& info) {
  const std::string kind = info[0].ToString().Utf8Value();
  const std::string message = info[1].ToString().Utf8Value();
  return video_rnn::addon::EngineWorker::Run(info.Env(), nullptr,
      [kind, message] {
        if (kind == "c10") throw c10::Error(c10::SourceLocation{__func__, __FILE__, __LINE__}, message);
        throw std::runtime_error(message);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// For the test suite: the external memory this isolate has been told about, in bytes.
Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using video_rnn::addon::ModelWrap;
  auto constructor = ModelWrap::Define(env);
  // createModel builds instances from C++, long after Init: keep the constructor per environment.
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(constructor)));
  exports.Set("NativeModel", constructor);
  exports.Set("createModel", Napi::Function::New(env, ModelWrap::Create, "createModel"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("buildConfig", Napi::Function::New(env, BuildConfig, "buildConfig"));
  exports.Set("failInWorkerForTesting", Napi::Function::New(env, FailInWorker, "failInWorkerForTesting"));
  exports.Set("externalMemoryForTesting", Napi::Function::New(env, ExternalMemory, "externalMemoryForTesting"));
  return exports;
}

}  // namespace

NODE_API_MODULE(video_rnn, Init)
