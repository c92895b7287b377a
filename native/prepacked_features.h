#pragma once
// VGG16's convolutions through oneDNN with their weights reordered once into oneDNN's own blocked
// layout, and the activations kept in oneDNN tensors from the first convolution to the last pool.
// LibTorch's dense path reorders every weight (and, in NCHW, every activation) on every call; on
// an AVX2 CPU the prepacked path ran VGG16 about 1.4 times as fast (bench/README.md).
//
// Every convolution but the first (3 input channels) runs as Winograd F(4x4, 3x3) instead
// (winograd.h), so the activations leave oneDNN after conv1_1 and stay NHWC to the last pool: on a 2-core AVX2 CPU VGG16's features took about half of oneDNN's time.
//
// Only where nothing needs autograd: no gradient recorded through the convolutions. In fp32, only
// without autocast. Under CPU autocast to bfloat16, where the CPU computes bf16 natively and the
// model allows it, every convolution runs here in bf16 instead: weights reordered once into
// oneDNN's bf16 layout, activations bf16 in oneDNN's layout from the input to the last pool, in
// inference mode. Autocast's own path (LibTorch's dense convolution) reorders every weight on
// every call. conv1_1 (3 input channels) runs in bf16 too: alone on an AMX CPU it took 0.64 ms per
// 112 px frame in bf16 against 2.61 in fp32, 5.56 with the conversion to bf16 (docs/design.md).
// The packed weights are rebuilt when any convolution's weight or bias changes
// (a load, a training step, a broadcast), detected by the tensors' version counters and storage.
#include <torch/torch.h>

#include "winograd.h"

#include <array>
#include <atomic>
#include <vector>

namespace video_rnn {

// Which path each convolution took: one count per convolution layer per forward call.
enum class ConvolutionPath { kWinogradAvx512, kWinogradAvx2, kWinogradBaseline, kOnednn, kOnednnBf16, kDense, kCount };
// Which precision the path runs in for one forward; kNone: LibTorch's dense path instead.
enum class PrepackedMode { kNone, kFloat, kBFloat16 };
using ConvolutionCounts = std::array<int64_t, static_cast<size_t>(ConvolutionPath::kCount)>;

class PrepackedFeatures {
 public:
  // Whether `x` through `features` can take this path now, and in which precision; `bf16`: whether
  // the bf16 path may run (the caller knows whether the CPU computes bf16 natively).
  static PrepackedMode applies(const torch::Tensor& x, torch::nn::Sequential& features, bool bf16);
  // features(x) for a dense float [N, 3, H, W] input; returns a dense tensor (bf16 in kBFloat16).
  torch::Tensor forward(const torch::Tensor& x, torch::nn::Sequential& features, PrepackedMode mode);
  // Whether the convolutions that can run as Winograd F(4x4, 3x3) do (default true).
  void use_winograd(bool enabled) { winograd_ = enabled; }
  // Which products kernel the Winograd convolutions run (kAuto: the best the CPU has).
  void use_winograd_kernel(WinogradKernel kernel) { kernel_ = kernel; }
  // `layers` convolutions that ran through LibTorch's own (dense) path instead of this one.
  void count_dense(int64_t layers) { count(ConvolutionPath::kDense, layers); }
  // The counts so far; read without a lock, while a forward may be running.
  ConvolutionCounts counts() const;

 private:
  void refresh(torch::nn::Sequential& features, bool bf16);
  torch::Tensor forward_bf16(const torch::Tensor& x, torch::nn::Sequential& features);
  void count(ConvolutionPath path, int64_t layers) { counts_[static_cast<size_t>(path)] += layers; }

  std::vector<torch::Tensor> weights_;  // oneDNN-blocked, one per convolution (undefined: Winograd)
  bool packed_bf16_ = false;  // weights_ hold bf16 weights for every convolution
  std::vector<WinogradFilter> filters_;  // transformed filters, one per convolution (empty: oneDNN)
  std::vector<torch::Tensor> biases_;
  // Per convolution: weight version, bias version, weight storage, bias storage, when packed.
  std::vector<int64_t> versions_;
  std::vector<const void*> storages_;
  bool winograd_ = true;
  bool packed_with_winograd_ = false;
  WinogradKernel kernel_ = WinogradKernel::kAuto;
  std::array<std::atomic<int64_t>, static_cast<size_t>(ConvolutionPath::kCount)> counts_{};
};

}  // namespace video_rnn
