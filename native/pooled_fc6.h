#pragma once
// fc6 reads the adaptive 7x7 average pool of VGG16's last feature map. Below 224 px that map is
// smaller than 7x7 (3x3 at 112 px, 2x2 at 64 px), and pool-then-fc6 is one linear map of the
// unpooled map: fc6's weights times the pool's matrix. Folded once per map size, fc6 reads
// 512 x h x w inputs instead of 25088: at 112 px 5.4 times fewer weights to stream from memory and
// multiply-adds. Exact in real arithmetic; in floating point each output sums other products in
// another order (about 1e-6 relative in fp32).
#include <torch/torch.h>

namespace video_rnn {

class PooledFc6 {
 public:
  // True where folding makes fc6 smaller: a map of fewer than 7 x 7 cells.
  static bool pays(int64_t height, int64_t width) { return height * width < 7 * 7; }

  // fc6's weight [out, channels x 49] folded with the pool of a height x width map, as
  // [out, channels x height x width] in `dtype`. Rebuilt when fc6's weight changes version or
  // storage (a load, a fine-tuning step), or when the size or dtype asked for changes.
  const torch::Tensor& weight(const torch::Tensor& fc6, int64_t height, int64_t width, at::ScalarType dtype);

 private:
  torch::Tensor folded_;
  int64_t height_ = -1;
  int64_t width_ = -1;
  at::ScalarType dtype_ = at::kFloat;
  int64_t version_ = -1;
  const void* storage_ = nullptr;
};

}  // namespace video_rnn
