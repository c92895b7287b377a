#include "prepacked_features.h"

#include "compat.h"

namespace video_rnn {
namespace {

// VGG16's convolutions as vgg16.cpp builds them: 3x3, stride 1, padding 1, dilation 1, one group.
const std::vector<int64_t> kPadding = {1, 1};
const std::vector<int64_t> kOnes = {1, 1};

std::vector<torch::nn::Conv2dImpl*> convolutions(torch::nn::Sequential& features) {
  std::vector<torch::nn::Conv2dImpl*> found;
  for (auto& layer : *features) {
    if (auto* conv = layer.ptr()->as<torch::nn::Conv2d>()) found.push_back(conv);
  }
  return found;
}

// Autocast off on this thread for a scope, and back on as it was: the bf16 path chooses its own
// types, and no operator in it should be cast again.
class NoAutocast {
 public:
  NoAutocast() : dtype_(compat::autocast_dtype(c10::DeviceType::CPU)) { compat::set_autocast(c10::DeviceType::CPU, false, at::kFloat); }
  ~NoAutocast() { compat::set_autocast(c10::DeviceType::CPU, true, dtype_); }
  NoAutocast(const NoAutocast&) = delete;
  NoAutocast& operator=(const NoAutocast&) = delete;

 private:
  at::ScalarType dtype_;
};

}  // namespace

PrepackedMode PrepackedFeatures::applies(const torch::Tensor& x, torch::nn::Sequential& features, bool bf16) {
  if (!x.is_cpu() || x.scalar_type() != torch::kFloat || !at::hasMKLDNN()) return PrepackedMode::kNone;
  PrepackedMode mode = PrepackedMode::kFloat;
  if (compat::autocast_enabled(c10::DeviceType::CPU)) {
    if (!bf16 || compat::autocast_dtype(c10::DeviceType::CPU) != at::kBFloat16) return PrepackedMode::kNone;
    mode = PrepackedMode::kBFloat16;
  }
  if (!torch::GradMode::is_enabled()) return mode;
  for (const auto& parameter : features->parameters()) {
    if (parameter.requires_grad()) return PrepackedMode::kNone;
  }
  return x.requires_grad() ? PrepackedMode::kNone : mode;
}

void PrepackedFeatures::refresh(torch::nn::Sequential& features, bool bf16) {
  const auto convs = convolutions(features);
  std::vector<int64_t> versions;
  std::vector<const void*> storages;
  for (auto* conv : convs) {
    versions.push_back(conv->weight._version());
    versions.push_back(conv->bias._version());
    storages.push_back(conv->weight.data_ptr());
    storages.push_back(conv->bias.data_ptr());
  }
  // Serial Winograd loses to oneDNN's threaded convolutions: only with OpenMP, or on one thread.
  const bool winograd = !bf16 && winograd_ && (winograd_runs_in_parallel() || at::get_num_threads() == 1);
  if (versions == versions_ && storages == storages_ && weights_.size() == convs.size() && packed_with_winograd_ == winograd &&
      packed_bf16_ == bf16) {
    return;
  }
  torch::NoGradGuard no_grad;
  weights_.clear();
  biases_.clear();
  filters_.clear();
  for (auto* conv : convs) {
    TORCH_CHECK(conv->options.groups() == 1 && (*conv->options.kernel_size())[0] == 3 && (*conv->options.stride())[0] == 1,
                "prepacked convolutions expect VGG16's 3x3, stride 1, one group");
    const int64_t in = conv->options.in_channels(), out = conv->options.out_channels();
    if (winograd && winograd_supports(in, out)) {
      filters_.push_back(winograd_filter(conv->weight, conv->bias));
      weights_.emplace_back();
      biases_.emplace_back();
      continue;
    }
    auto dense = conv->weight.detach().contiguous();
    auto blocked = bf16 ? dense.to_mkldnn(at::kBFloat16) : dense.to_mkldnn();
    weights_.push_back(at::mkldnn_reorder_conv2d_weight(blocked, kPadding, kOnes, kOnes, 1));
    // In bf16, an fp32 oneDNN bias, as torch.utils.mkldnn pairs it with bf16 weights.
    auto bias = conv->bias.detach().contiguous();
    biases_.push_back(bf16 ? bias.to_mkldnn() : bias);
    filters_.emplace_back();
  }
  packed_with_winograd_ = winograd;
  packed_bf16_ = bf16;
  versions_ = std::move(versions);
  storages_ = std::move(storages);
}

ConvolutionCounts PrepackedFeatures::counts() const {
  ConvolutionCounts counts{};
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = counts_[i].load();
  return counts;
}

torch::Tensor PrepackedFeatures::forward(const torch::Tensor& x, torch::nn::Sequential& features, PrepackedMode mode) {
  TORCH_CHECK(mode != PrepackedMode::kNone, "prepacked convolutions called where they do not apply");
  // oneDNN tensors dispatch through the AutogradOther key. A LibTorch built with Vulkan (Debian's
  // 2.6) registers max_pool2d for a backend behind that key as well, so with the autograd keys in
  // play the dispatcher refuses the call as ambiguous, even under NoGradGuard. Inference mode takes
  // those keys out; what leaves here is a plain dense tensor that autograd may use afterwards.
  c10::InferenceMode inference;
  if (mode == PrepackedMode::kBFloat16) return forward_bf16(x, features);
  refresh(features, false);
  const WinogradKernel kernel = winograd_kernel_resolve(kernel_);
  const ConvolutionPath winograd_path = kernel == WinogradKernel::kAvx512 ? ConvolutionPath::kWinogradAvx512
                                        : kernel == WinogradKernel::kAvx2 ? ConvolutionPath::kWinogradAvx2
                                                                          : ConvolutionPath::kWinogradBaseline;
  auto y = x.contiguous().to_mkldnn();
  size_t next = 0;
  bool relu_applied = false;  // by the Winograd output transform, for the ReLU layer that follows
  for (auto& layer : *features) {
    if (layer.ptr()->as<torch::nn::Conv2d>() != nullptr) {
      if (weights_[next].defined()) {
        if (!y.is_mkldnn()) y = y.contiguous().to_mkldnn();
        y = at::mkldnn_convolution(y, weights_[next], biases_[next], kPadding, kOnes, kOnes, 1);
        count(ConvolutionPath::kOnednn, 1);
      } else {
        // oneDNN's blocked layout to NHWC, once, where the first Winograd convolution starts.
        if (y.is_mkldnn()) y = y.to_dense().contiguous(at::MemoryFormat::ChannelsLast);
        y = winograd_conv3x3_relu(y, filters_[next], kernel);
        count(winograd_path, 1);
        relu_applied = true;
      }
      ++next;
    } else if (relu_applied && layer.ptr()->as<torch::nn::ReLU>() != nullptr) {
      relu_applied = false;
    } else {
      y = layer.forward(y);
    }
  }
  return y.is_mkldnn() ? y.to_dense() : y.contiguous();
}

// Under inference mode (forward). The bias stays fp32 (refresh): oneDNN adds it before rounding the
// output to bf16, where autocast's convolution rounds the bias to bf16 first.
torch::Tensor PrepackedFeatures::forward_bf16(const torch::Tensor& x, torch::nn::Sequential& features) {
  NoAutocast no_autocast;
  refresh(features, true);
  auto y = x.contiguous().to_mkldnn(at::kBFloat16);
  size_t next = 0;
  for (auto& layer : *features) {
    if (layer.ptr()->as<torch::nn::Conv2d>() != nullptr) {
      y = at::mkldnn_convolution(y, weights_[next], biases_[next], kPadding, kOnes, kOnes, 1);
      count(ConvolutionPath::kOnednnBf16, 1);
      ++next;
    } else {
      y = layer.forward(y);
    }
  }
  return y.to_dense();
}

}  // namespace video_rnn
