#pragma once
// 3x3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3), with the
// bias and the ReLU that follows every VGG16 convolution applied in the output transform.
//
// A 6x6 input tile and a 3x3 filter, both moved into the transform domain, give a 4x4 output tile
// from 36 multiplications instead of 144 (Lavin and Gray, "Fast Algorithms for Convolutional
// Neural Networks", CVPR 2016, whose matrices B, G and A are used here). Over many tiles and
// channels the 36 elementwise products become 36 independent matrix products
// [tiles x in] x [in x out], run by a register-blocked kernel near the CPU's multiply-add peak:
// 6 x 16 outputs per step in 8-lane vectors (AVX2, and the baseline), 6 x 64 in 16-lane vectors
// (AVX-512). The kernel is chosen at run time from the CPU's flags, or forced (WinogradKernel). Each intra-op thread takes whole blocks of tiles, sized to stay in its
// core's caches, through the input transform, the products and the output transform.
//
// Accuracy: the transforms round differently from a direct convolution; fc7 of VGG16 stays within
// 1e-4 of torchvision's (test/model.golden.test.mjs), about 1e-5 relative per layer.
//
// Activations are NHWC (channels_last); input channels in multiples of 8, output in multiples of 16.
#include <torch/torch.h>

#include <string>

namespace video_rnn {

// Which products kernel runs: the best this CPU has (kAuto), or one forced.
enum class WinogradKernel { kAuto, kBaseline, kAvx2, kAvx512 };

// Whether this CPU (and this build: the vector kernels exist on x86-64 with GCC or Clang) can run it.
bool winograd_kernel_available(WinogradKernel kernel);
// kAuto as the best available kernel; any other kernel as itself, or an error where it is unavailable.
WinogradKernel winograd_kernel_resolve(WinogradKernel requested);
// "auto", "baseline", "avx2", "avx512"; from_name returns false for any other name.
const char* winograd_kernel_name(WinogradKernel kernel);
bool winograd_kernel_from_name(const std::string& name, WinogradKernel* kernel);

struct WinogradFilter {
  torch::Tensor transformed;  // [36, out / 16, in, 16]: G g G^T per (in, out) filter, in 16-wide panels
  torch::Tensor bias;         // [out]
  int64_t in = 0;
  int64_t out = 0;
};

// Whether a 3x3 convolution from `in` to `out` channels can take this path.
bool winograd_supports(int64_t in, int64_t out);

// Whether this file was compiled with OpenMP, so that its work spreads over LibTorch's intra-op
// threads (at::parallel_for is serial otherwise).
bool winograd_runs_in_parallel();

// The filter of a Conv2d weight [out, in, 3, 3] and its bias [out], transformed once.
WinogradFilter winograd_filter(const torch::Tensor& weight, const torch::Tensor& bias);

// relu(conv3x3(x, padding 1) + bias) for x [N, in, H, W] float on the CPU, any layout; the result
// is [N, out, H, W] in channels_last. `kernel` must be available (winograd_kernel_resolve).
torch::Tensor winograd_conv3x3_relu(const torch::Tensor& x, const WinogradFilter& filter,
                                    WinogradKernel kernel = WinogradKernel::kAuto);

}  // namespace video_rnn
