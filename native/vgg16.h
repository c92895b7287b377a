#pragma once
// VGG16 in torchvision's layout, so that torchvision state dicts map 1:1 by name:
// features.0 ... features.28, avgpool (adaptive 7x7), classifier.0 (fc6) and classifier.3 (fc7).
// The last classifier layer (fc8) is left out: the output is the 4096-d fc7 embedding.
#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "pooled_fc6.h"
#include "prepacked_features.h"

namespace video_rnn {

constexpr int64_t kEmbeddingSize = 4096;
constexpr int64_t kMinFrameSize = 32;  // five 2x2 max-pools need at least 32 px
// VGG16 has 16 weight layers; fc8 is removed, so 15 remain in the backbone (the same limit as
// MAX_TRAINABLE_BACKBONE_LAYERS in src/constants.ts, which validates before anything native runs).
constexpr int64_t kMaxTrainableBackboneLayers = 15;

struct Vgg16Impl : torch::nn::Module {
  Vgg16Impl();

  // x: float [N, 3, H, W], normalised. Returns fc7 activations [N, 4096].
  torch::Tensor forward(const torch::Tensor& x);

  // torchvision's initialisation: kaiming-normal (fan_out) convolutions, N(0, 0.01) linears.
  void reset_parameters();

  // Makes the top `count` weight layers trainable (requires_grad) and the rest frozen.
  // Dropout layers follow the weight layer they come right after, so that a frozen layer's
  // output stays deterministic; `training` says whether trainable layers run in train mode.
  void set_trainable_layers(int64_t count);
  void apply_modes(bool training);
  int64_t trainable_layers() const { return trainable_layers_; }
  // Convolutions through oneDNN with prepacked weights where they apply (prepacked_features.h).
  void use_prepacked_convolutions(bool enabled) { prepacked_enabled_ = enabled; }
  // Under CPU autocast to bf16, the convolutions prepacked in bf16 too (for CPUs with native bf16),
  // and frozen fc6/fc7 weights cast to bf16 once instead of on every call.
  void use_bf16_prepacked_convolutions(bool enabled) { bf16_prepacked_enabled_ = enabled; }
  // Within that path, convolutions as Winograd F(4x4, 3x3) where they can (winograd.h).
  void use_winograd_convolutions(bool enabled) { prepacked_->use_winograd(enabled); }
  void use_winograd_kernel(WinogradKernel kernel) { prepacked_->use_winograd_kernel(kernel); }
  // Where no gradient is recorded and the last map is under 7x7, fc6 folded with the average pool (pooled_fc6.h).
  void use_pooled_fc6(bool enabled) { pooled_fc6_enabled_ = enabled; }
  int64_t pooled_fc6_forwards() const { return pooled_fc6_forwards_.load(); }
  // Which path the convolutions took, one count per layer per forward (prepacked_features.h).
  ConvolutionCounts convolution_counts() const { return prepacked_->counts(); }

  torch::nn::Sequential features{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool{nullptr};
  torch::nn::Sequential classifier{nullptr};

 private:
  int64_t trainable_layers_ = 0;
  bool prepacked_enabled_ = true;
  bool bf16_prepacked_enabled_ = false;
  bool pooled_fc6_enabled_ = true;
  PooledFc6 pooled_fc6_;
  std::atomic<int64_t> pooled_fc6_forwards_{0};
  // Whether frozen linear weights are cast to bf16 once (cast_weights_) under the current autocast.
  bool bf16_cast_applies(const torch::Tensor& weight) const;
  int64_t convolution_layers_ = 0;
  // fc6's and fc7's weights in bf16, rebuilt when a weight changes version or storage.
  struct CastWeight {
    torch::Tensor weight;
    int64_t version = -1;
    const void* storage = nullptr;
  };
  std::vector<CastWeight> cast_weights_;
  // The bf16 copy of `linear`'s weight where cast_weights_ apply now, else undefined.
  torch::Tensor cast_weight(torch::nn::LinearImpl& linear, size_t index);
  std::shared_ptr<PrepackedFeatures> prepacked_ = std::make_shared<PrepackedFeatures>();
};
TORCH_MODULE(Vgg16);

}  // namespace video_rnn
