#include "vgg16.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <thread>

#include "compat.h"
#include "phase_times.h"

namespace video_rnn {
namespace {

// More chunks than this gain nothing on a memory-bound GEMM and cost a thread each.
constexpr int64_t kMaxLinearSplit = 16;

// torchvision's configuration "D": channel counts, 0 marks a 2x2 max-pool.
const std::vector<int64_t> kConfigD = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                                       512, 512, 512, 0, 512, 512, 512, 0};

// fc6 and fc7 are one GEMM each and memory-bound (fc6 reads 411 MB of weights per call). BLAS is
// kept single-threaded (see native.ts: OpenBLAS's own thread pool deadlocks a fork that happens
// while it works), so split the output features across the intra-op thread count instead.
// The chunks run on threads of their own, so that they run in parallel however this file was
// compiled: at::parallel_for's OpenMP backend is a header template whose pragma parallelises only
// in code compiled with -fopenmp. The addon is compiled with OpenMP where the compiler has it
// (CMakeLists.txt, binding.gyp), against the libgomp LibTorch itself links, so the Winograd
// convolutions spread over the intra-op threads; a build without it must still split fc6 and fc7.
// Only on the CPU (CUDA runs one kernel), and only where no gradient is recorded.
// `cast`, where defined, is the weight to use instead of the layer's own: already in autocast's
// dtype (Vgg16Impl::cast_weight), or fc6 folded with the pool (pooled_fc6.h), never while a
// gradient is recorded.
torch::Tensor parallel_linear(const torch::Tensor& x, torch::nn::LinearImpl& linear, const torch::Tensor& cast) {
  const auto& weight = cast.defined() ? cast : linear.weight;
  const auto& bias = linear.bias;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), kMaxLinearSplit);
  const bool records_grad = torch::GradMode::is_enabled() && (x.requires_grad() || linear.weight.requires_grad());
  if (records_grad || !x.is_cpu()) return linear.forward(x);
  if (threads <= 1 || at::in_parallel_region()) {
    if (!cast.defined()) return linear.forward(x);
    // Under autocast, linear casts a float weight to autocast's dtype as it does the layer's own.
    if (cast.scalar_type() == linear.weight.scalar_type()) return torch::linear(x, cast, bias);
    return torch::addmm(bias.to(cast.scalar_type()), x.to(cast.scalar_type()), cast.t());
  }
  // Autocast is thread-local, and so is its CPU dtype: cast as autocast does for linear on this
  // thread, so every chunk computes in the dtype autocast chose. The rest of the thread-local
  // state (grad mode, inference mode) goes along with each chunk.
  const auto dtype = compat::autocast_enabled(c10::DeviceType::CPU) ? compat::autocast_dtype(c10::DeviceType::CPU) : weight.scalar_type();
  const auto input = x.to(dtype);
  const int64_t features = weight.size(0);
  const int64_t step = (features + threads - 1) / threads;
  std::vector<torch::Tensor> parts(static_cast<size_t>(threads));
  std::vector<std::exception_ptr> errors(parts.size());
  auto run = [&](int64_t part) {
    try {
      const int64_t begin = part * step;
      const int64_t length = std::min(step, features - begin);
      if (length <= 0) return;
      // Each chunk casts its own slice of the weights, so the cast is split across threads too.
      parts[part] = torch::addmm(bias.narrow(0, begin, length).to(dtype), input,
                                 weight.narrow(0, begin, length).to(dtype).t());
    } catch (...) {
      errors[part] = std::current_exception();
    }
  };
  const at::ThreadLocalState state;
  std::vector<std::thread> helpers;
  for (int64_t part = 1; part < threads; ++part) {
    helpers.emplace_back([&state, &run, part] {
      at::ThreadLocalStateGuard guard(state);
      run(part);
    });
  }
  run(0);
  for (auto& helper : helpers) helper.join();
  for (auto& error : errors) if (error) std::rethrow_exception(error);
  std::vector<torch::Tensor> present;
  for (auto& part : parts) if (part.defined()) present.push_back(part);
  return torch::cat(present, 1);
}

bool is_weight_layer(const std::shared_ptr<torch::nn::Module>& module) {
  return module->as<torch::nn::Conv2d>() != nullptr || module->as<torch::nn::Linear>() != nullptr;
}

// (qualified name, module) of the features and classifier children, bottom to top.
std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> layers_bottom_up(
    const torch::nn::Sequential& features, const torch::nn::Sequential& classifier) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> layers;
  for (const auto& item : features->named_children()) layers.emplace_back("features." + item.key(), item.value());
  for (const auto& item : classifier->named_children()) layers.emplace_back("classifier." + item.key(), item.value());
  return layers;
}

// fc6 and fc7 at full size without LibTorch's own initialisation of a Linear (kaiming-uniform over
// 119 M values, about 0.6 s on 2 cores), which reset_parameters() or a loaded state replaces anyway.
torch::nn::Linear uninitialised_linear(int64_t in_features, int64_t out_features) {
  torch::nn::Linear linear(torch::nn::LinearOptions(1, 1));
  linear->options.in_features(in_features).out_features(out_features);
  linear->weight.set_data(torch::empty({out_features, in_features}));
  linear->bias.set_data(torch::empty({out_features}));
  return linear;
}

// N(mean, std) in fixed chunks of 2^20 values, each from its own generator seeded from one draw of
// the global generator, filled in parallel: the values follow the seed alone, whatever the thread
// count. (One generator for fc6's 103 M values takes about 0.5 s on one core.)
void parallel_normal_(torch::Tensor& tensor, double mean, double std) {
  constexpr int64_t kChunk = int64_t{1} << 20;
  // Detached: grad mode is per thread, and the threads of parallel_for do not inherit the caller's
  // NoGradGuard.
  auto flat = tensor.detach().view({-1});
  const int64_t chunks = (flat.numel() + kChunk - 1) / kChunk;
  const auto base = static_cast<uint64_t>(torch::randint(0, int64_t{1} << 62, {1}, torch::kInt64).item<int64_t>());
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      auto generator = at::make_generator<at::CPUGeneratorImpl>(base + static_cast<uint64_t>(chunk));
      flat.slice(0, chunk * kChunk, std::min(flat.numel(), (chunk + 1) * kChunk)).normal_(mean, std, generator);
    }
  });
}

}  // namespace

Vgg16Impl::Vgg16Impl() {
  torch::nn::Sequential layers;
  int64_t channels = 3;
  for (int64_t width : kConfigD) {
    if (width == 0) {
      layers->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
    } else {
      layers->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, width, 3).padding(1)));
      ++convolution_layers_;
      layers->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
      channels = width;
    }
  }
  features = register_module("features", layers);
  avgpool = register_module("avgpool", torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({7, 7})));
  // classifier[:-1] of torchvision's VGG: fc6, ReLU, Dropout, fc7, ReLU, Dropout.
  classifier = register_module("classifier", torch::nn::Sequential(
      uninitialised_linear(512 * 7 * 7, kEmbeddingSize),
      torch::nn::ReLU(torch::nn::ReLUOptions(true)),
      torch::nn::Dropout(0.5),
      uninitialised_linear(kEmbeddingSize, kEmbeddingSize),
      torch::nn::ReLU(torch::nn::ReLUOptions(true)),
      torch::nn::Dropout(0.5)));
  reset_parameters();
  set_trainable_layers(0);
}

torch::Tensor Vgg16Impl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  auto& fc6 = *classifier->ptr(0)->as<torch::nn::Linear>();
  torch::Tensor folded_fc6;  // fc6 folded with the pool (pooled_fc6.h), where it applies
  {
    PhaseTimer timer(Phase::kConvolutions);
    auto mode = PrepackedFeatures::applies(x, features, bf16_prepacked_enabled_);
    if (mode == PrepackedMode::kFloat && !prepacked_enabled_) mode = PrepackedMode::kNone;
    if (mode == PrepackedMode::kNone) prepacked_->count_dense(convolution_layers_);
    auto mapped = mode != PrepackedMode::kNone ? prepacked_->forward(x, features, mode) : features->forward(x);
    const bool records_grad = torch::GradMode::is_enabled() && (mapped.requires_grad() || fc6.weight.requires_grad());
    if (pooled_fc6_enabled_ && mapped.is_cpu() && !records_grad && PooledFc6::pays(mapped.size(2), mapped.size(3))) {
      folded_fc6 = pooled_fc6_.weight(fc6.weight, mapped.size(2), mapped.size(3),
                                      bf16_cast_applies(fc6.weight) ? at::kBFloat16 : fc6.weight.scalar_type());
      y = torch::flatten(mapped, 1);
      ++pooled_fc6_forwards_;
    } else {
      y = torch::flatten(avgpool->forward(mapped), 1);
    }
  }
  PhaseTimer timer(Phase::kClassifier);
  size_t linear_index = 0;
  for (auto& layer : *classifier) {
    auto* linear = layer.ptr()->as<torch::nn::Linear>();
    if (linear == nullptr) {
      y = layer.forward(y);
      continue;
    }
    const auto weight = linear == &fc6 && folded_fc6.defined() ? folded_fc6 : cast_weight(*linear, linear_index);
    ++linear_index;
    y = parallel_linear(y, *linear, weight);
  }
  return y;
}

bool Vgg16Impl::bf16_cast_applies(const torch::Tensor& weight) const {
  return bf16_prepacked_enabled_ && weight.is_cpu() && !weight.requires_grad() &&
         compat::autocast_enabled(c10::DeviceType::CPU) && compat::autocast_dtype(c10::DeviceType::CPU) == at::kBFloat16;
}

torch::Tensor Vgg16Impl::cast_weight(torch::nn::LinearImpl& linear, size_t index) {
  const auto& weight = linear.weight;
  if (!bf16_cast_applies(weight)) return {};
  if (cast_weights_.size() <= index) cast_weights_.resize(index + 1);
  auto& cached = cast_weights_[index];
  if (!cached.weight.defined() || cached.version != weight._version() || cached.storage != weight.data_ptr()) {
    torch::NoGradGuard no_grad;
    cached.weight = weight.detach().to(at::kBFloat16).contiguous();
    cached.version = weight._version();
    cached.storage = weight.data_ptr();
  }
  return cached.weight;
}

void Vgg16Impl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      torch::nn::init::zeros_(conv->bias);
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      parallel_normal_(linear->weight, 0.0, 0.01);
      torch::nn::init::zeros_(linear->bias);
    }
  }
}

void Vgg16Impl::set_trainable_layers(int64_t count) {
  TORCH_CHECK(count >= 0 && count <= kMaxTrainableBackboneLayers,
              "trainableBackboneLayers must be between 0 and ", kMaxTrainableBackboneLayers, ", got ", count);
  trainable_layers_ = count;
  const auto layers = layers_bottom_up(features, classifier);
  int64_t total = 0;
  for (const auto& layer : layers) total += is_weight_layer(layer.second) ? 1 : 0;
  int64_t seen = 0;
  for (const auto& [name, module] : layers) {
    if (!is_weight_layer(module)) continue;
    const bool trainable = total - seen <= count;
    ++seen;
    for (auto& parameter : module->parameters()) parameter.set_requires_grad(trainable);
  }
  apply_modes(is_training());
}

void Vgg16Impl::apply_modes(bool training) {
  // Module::train would flip every child; set each layer's mode from its own trainability.
  torch::nn::Module::train(training);
  bool previous_trainable = false;
  for (const auto& [name, module] : layers_bottom_up(features, classifier)) {
    if (is_weight_layer(module)) {
      previous_trainable = module->parameters().front().requires_grad();
      module->train(training && previous_trainable);
    } else {
      module->train(training && previous_trainable);
    }
  }
  avgpool->train(false);
}

}  // namespace video_rnn
