// Entry point of the addon: createModel, backendInfo, buildConfig and the NativeModel class.
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/Version.h>

#include <dlfcn.h>

#include <algorithm>
#include <string>
#include <thread>

#include "winograd.h"
#include "convert.h"
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
  // The Winograd products kernels this CPU can run, the one chosen by default first.
  using video_rnn::WinogradKernel;
  auto kernels = Napi::Array::New(env);
  for (auto kernel : {WinogradKernel::kAvx512, WinogradKernel::kAvx2, WinogradKernel::kBaseline}) {
    if (video_rnn::winograd_kernel_available(kernel)) kernels.Set(kernels.Length(), video_rnn::winograd_kernel_name(kernel));
  }
  object.Set("winogradKernels", kernels);
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

// For the test suite: relu(conv3x3(x, padding 1) + bias) of seeded normal data through one Winograd
// kernel on `threads` intra-op threads, and through LibTorch's dense convolution. Arguments
// {kernel, threads, batch, in, out, height, width, seed}; returns {winograd, dense} as NCHW
// Float32Arrays [batch, out, height, width].
Napi::Value WinogradForTesting(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto args = info[0].As<Napi::Object>();
  auto field = [&](const char* name) { return static_cast<int64_t>(args.Get(name).ToNumber().Int64Value()); };
  video_rnn::WinogradKernel kernel;
  const std::string name = args.Get("kernel").ToString().Utf8Value();
  if (!video_rnn::winograd_kernel_from_name(name, &kernel) || !video_rnn::winograd_kernel_available(kernel)) {
    throw video_rnn::addon::coded_error(env, "E_INVALID_ARGUMENT", "no Winograd kernel " + name + " on this CPU");
  }
  const int64_t batch = field("batch"), in = field("in"), out = field("out"), height = field("height"), width = field("width");
  if (!video_rnn::winograd_supports(in, out) || batch < 1 || height < 1 || width < 1 || field("threads") < 1) {
    throw video_rnn::addon::coded_error(env, "E_INVALID_ARGUMENT", "winogradForTesting: unsupported shape");
  }
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(field("seed")));
  const auto x = torch::randn({batch, in, height, width}, generator);
  const auto weight = torch::randn({out, in, 3, 3}, generator) * std::sqrt(2.0 / (9.0 * static_cast<double>(in)));
  const auto bias = torch::randn({out}, generator) * 0.1;
  const int previous = at::get_num_threads();
  at::set_num_threads(static_cast<int>(field("threads")));
  const auto winograd = video_rnn::winograd_conv3x3_relu(x, video_rnn::winograd_filter(weight, bias), kernel).contiguous();
  at::set_num_threads(previous);
  const auto dense = torch::relu(torch::conv2d(x, weight, bias, 1, 1)).contiguous();
  auto result = Napi::Object::New(env);
  result.Set("winograd", video_rnn::addon::to_float32_array(env, winograd));
  result.Set("dense", video_rnn::addon::to_float32_array(env, dense));
  return result;
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
  exports.Set("winogradForTesting", Napi::Function::New(env, WinogradForTesting, "winogradForTesting"));
  exports.Set("externalMemoryForTesting", Napi::Function::New(env, ExternalMemory, "externalMemoryForTesting"));
  return exports;
}

}  // namespace

NODE_API_MODULE(video_rnn, Init)
