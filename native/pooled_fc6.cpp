#include "pooled_fc6.h"

namespace video_rnn {

const torch::Tensor& PooledFc6::weight(const torch::Tensor& fc6, int64_t height, int64_t width, at::ScalarType dtype) {
  if (folded_.defined() && height == height_ && width == width_ && dtype == dtype_ && fc6._version() == version_ &&
      fc6.data_ptr() == storage_) {
    return folded_;
  }
  torch::NoGradGuard no_grad;
  folded_ = torch::Tensor();  // the old fold goes before the new one is built
  const int64_t cells = height * width;
  const int64_t outputs = fc6.size(0);
  const int64_t channels = fc6.size(1) / 49;
  TORCH_CHECK(channels * 49 == fc6.size(1), "fc6 expects a 7x7 map per channel");
  // Row k is the pool of a map that is 1 at cell k and 0 elsewhere: the pool's own bins and weights.
  const auto basis = torch::eye(cells, fc6.options().dtype(at::kFloat)).view({cells, 1, height, width});
  const auto pool = torch::adaptive_avg_pool2d(basis, {7, 7}).view({cells, 49});
  const auto folded = torch::matmul(fc6.detach().to(at::kFloat).view({outputs, channels, 49}), pool.t());
  folded_ = folded.reshape({outputs, channels * cells}).to(dtype).contiguous();
  height_ = height;
  width_ = width;
  dtype_ = dtype;
  version_ = fc6._version();
  storage_ = fc6.data_ptr();
  return folded_;
}

}  // namespace video_rnn
