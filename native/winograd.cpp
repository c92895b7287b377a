#include "winograd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "winograd_kernels.h"

// The kernels are written on vectors of 8 or 16 channels so that the compiler turns each line into
// one vector operation. On x86-64 they are compiled three times: 8 lanes for the baseline and for
// AVX2 + FMA, 16 lanes for AVX-512, each of the last two inside a function with its own target
// attribute and called only where the CPU has those instructions (winograd_kernel_available), so
// nothing that runs unconditionally uses them. Products fuse into multiply-adds whatever the -std
// mode says.
#if defined(__GNUC__) && !defined(__clang__)
#define VIDEO_RNN_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define VIDEO_RNN_CONTRACT
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define VIDEO_RNN_AVX2_KERNELS 1
#endif

namespace video_rnn {
namespace {

using namespace winograd_detail;

// One block of tiles: input transform, the 36 products, output transform.
VIDEO_RNN_INLINE void process_block(const float* x, const float* u, const float* bias, const Geometry& g, int64_t first,
                                    int64_t count, int64_t block, float* v, float* m, float* y) {
  transform_input<Lanes>(x, g, first, count, block, v);
  multiply_points(v, u, g, count, block, m);
  transform_output<Lanes>(m, bias, g, first, count, block, y);
}

using BlockKernel = void (*)(const float*, const float*, const float*, const Geometry&, int64_t, int64_t, int64_t, float*,
                             float*, float*);

VIDEO_RNN_CONTRACT void process_block_baseline(const float* x, const float* u, const float* bias, const Geometry& g,
                                               int64_t first, int64_t count, int64_t block, float* v, float* m, float* y) {
  process_block(x, u, bias, g, first, count, block, v, m, y);
}

#ifdef VIDEO_RNN_AVX2_KERNELS
__attribute__((target("avx2,fma"))) VIDEO_RNN_CONTRACT void process_block_avx2(const float* x, const float* u,
                                                                               const float* bias, const Geometry& g,
                                                                               int64_t first, int64_t count, int64_t block,
                                                                               float* v, float* m, float* y) {
  process_block(x, u, bias, g, first, count, block, v, m, y);
}

// 16 lanes throughout; the input transform 8 wide where the input channels are not a multiple of 16.
__attribute__((target("avx512f,avx2,fma"))) VIDEO_RNN_CONTRACT void process_block_avx512(
    const float* x, const float* u, const float* bias, const Geometry& g, int64_t first, int64_t count, int64_t block, float* v,
    float* m, float* y) {
  if (g.in % lanes_of<Lanes16>() == 0) {
    transform_input<Lanes16>(x, g, first, count, block, v);
  } else {
    transform_input<Lanes>(x, g, first, count, block, v);
  }
  multiply_points16(v, u, g, count, block, m);
  transform_output<Lanes16>(m, bias, g, first, count, block, y);
}
#endif

BlockKernel block_kernel(WinogradKernel kernel) {
  switch (kernel) {
#ifdef VIDEO_RNN_AVX2_KERNELS
    case WinogradKernel::kAvx512: return process_block_avx512;
    case WinogradKernel::kAvx2: return process_block_avx2;
#endif
    default: return process_block_baseline;
  }
}

}  // namespace

bool winograd_runs_in_parallel() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

bool winograd_kernel_available(WinogradKernel kernel) {
  switch (kernel) {
    case WinogradKernel::kAuto:
    case WinogradKernel::kBaseline: return true;
#ifdef VIDEO_RNN_AVX2_KERNELS
    // libgcc's checks include the operating system's support for the registers (XCR0).
    case WinogradKernel::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case WinogradKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default: return false;
  }
}

WinogradKernel winograd_kernel_resolve(WinogradKernel requested) {
  if (requested != WinogradKernel::kAuto) {
    TORCH_CHECK(winograd_kernel_available(requested), "the Winograd kernel ", winograd_kernel_name(requested),
                " needs CPU instructions this CPU or build lacks");
    return requested;
  }
  for (auto kernel : {WinogradKernel::kAvx512, WinogradKernel::kAvx2}) {
    if (winograd_kernel_available(kernel)) return kernel;
  }
  return WinogradKernel::kBaseline;
}

const char* winograd_kernel_name(WinogradKernel kernel) {
  switch (kernel) {
    case WinogradKernel::kBaseline: return "baseline";
    case WinogradKernel::kAvx2: return "avx2";
    case WinogradKernel::kAvx512: return "avx512";
    default: return "auto";
  }
}

bool winograd_kernel_from_name(const std::string& name, WinogradKernel* kernel) {
  for (auto candidate : {WinogradKernel::kAuto, WinogradKernel::kBaseline, WinogradKernel::kAvx2, WinogradKernel::kAvx512}) {
    if (name == winograd_kernel_name(candidate)) {
      *kernel = candidate;
      return true;
    }
  }
  return false;
}

bool winograd_supports(int64_t in, int64_t out) { return in > 0 && out > 0 && in % kLanes == 0 && out % kPanel == 0; }

WinogradFilter winograd_filter(const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3, "Winograd F(4x4, 3x3) needs 3x3 filters");
  const int64_t in = weight.size(1), out = weight.size(0);
  TORCH_CHECK(winograd_supports(in, out), "Winograd convolutions need input channels in multiples of 8 and output ",
              "channels in multiples of 16, got ", in, " and ", out);
  torch::NoGradGuard no_grad;
  // G, 6 x 3 (Lavin and Gray 2016), in double so that the transformed filter is rounded once.
  const auto g = torch::tensor({1.0 / 4, 0.0, 0.0, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 12,
                                1.0 / 6, 1.0 / 24, -1.0 / 12, 1.0 / 6, 0.0, 0.0, 1.0},
                               torch::kDouble)
                     .view({6, 3});
  const auto w = weight.detach().to(torch::kCPU, torch::kDouble);
  // U[a, b, in, out] = sum_kl G[a, k] w[out, in, k, l] G[b, l], packed as [36, out / 16, in, 16].
  auto u = torch::einsum("ak,oikl,bl->abio", {g, w, g}).reshape({kPoints, in, out / kPanel, kPanel});
  WinogradFilter filter;
  filter.transformed = u.permute({0, 2, 1, 3}).to(torch::kFloat).contiguous();
  filter.bias = bias.detach().to(torch::kCPU, torch::kFloat).contiguous();
  filter.in = in;
  filter.out = out;
  return filter;
}

torch::Tensor winograd_conv3x3_relu(const torch::Tensor& input, const WinogradFilter& filter, WinogradKernel kernel) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == filter.in && input.scalar_type() == torch::kFloat && input.is_cpu(),
              "Winograd convolution: expected a float CPU input [N, ", filter.in, ", H, W]");
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const Geometry g{x.size(2), x.size(3), filter.in, filter.out, (x.size(2) + kOut - 1) / kOut, (x.size(3) + kOut - 1) / kOut};
  const int64_t tiles = x.size(0) * g.tiles_y * g.tiles_x;
  auto y = torch::empty({x.size(0), g.out, g.height, g.width}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  if (tiles == 0) return y;
  // Each thread takes whole blocks of tiles through both transforms and the products, in its own
  // scratch memory: no hand-over between threads, and each block stays in that core's caches.
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t per_thread = (tiles + threads - 1) / threads;
  const int64_t block = std::max<int64_t>(
      1, std::min({std::max(kBlockBytes / (kPoints * (g.in + g.out) * int64_t{sizeof(float)}), kMinBlock), per_thread, tiles}));
  const int64_t blocks = (tiles + block - 1) / block;
  const float* xs = x.data_ptr<float>();
  const float* u = filter.transformed.data_ptr<float>();
  const float* bias = filter.bias.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  const BlockKernel run_block = block_kernel(winograd_kernel_resolve(kernel));
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v(static_cast<size_t>(kPoints * block * g.in));
    std::vector<float> m(static_cast<size_t>(kPoints * block * g.out));
    for (int64_t index = begin; index < end; ++index) {
      const int64_t first = index * block;
      run_block(xs, u, bias, g, first, std::min(block, tiles - first), block, v.data(), m.data(), ys);
    }
  });
  return y;
}

}  // namespace video_rnn
