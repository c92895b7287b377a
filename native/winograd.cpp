#include "winograd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

// The kernels are written 8 channels wide so that the compiler turns each line into one vector
// operation, and compiled twice on x86-64: for AVX2 + FMA, chosen at run time where the CPU has
// them, and for the baseline. Products fuse into multiply-adds whatever the -std mode says.
#if defined(__GNUC__) && !defined(__clang__)
#define VIDEO_RNN_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define VIDEO_RNN_CONTRACT
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define VIDEO_RNN_AVX2_KERNELS 1
#endif
#define VIDEO_RNN_INLINE __attribute__((always_inline)) inline

namespace video_rnn {
namespace {

constexpr int64_t kLanes = 8;
constexpr int64_t kTile = 6;     // input tile side
constexpr int64_t kOut = 4;      // output tile side
constexpr int64_t kPoints = 36;  // kTile * kTile
// The matrix products: 6 rows by 16 columns of the output per step, 256 deep at most.
constexpr int64_t kRows = 6;
constexpr int64_t kPanel = 16;
constexpr int64_t kDepth = 256;
// Bytes of transformed input and output per block of tiles, small enough to stay in cache between
// the input transform, the matrix products and the output transform; but at least kMinBlock tiles,
// so that each slice of a filter panel serves enough rows. Both measured on a 2-core
// Zen 3 (512 KiB L2 per core): no other size tried (0.75 to 4 MiB, 32 to 128 tiles, 128 or 512
// deep) ran VGG16 measurably faster.
constexpr int64_t kBlockBytes = int64_t{2} << 20;
constexpr int64_t kMinBlock = 64;

struct Geometry {
  int64_t height, width, in, out, tiles_y, tiles_x;
};

// Eight floats as one value; GCC and Clang lower the arithmetic to AVX, SSE or NEON as available.
typedef float Lanes __attribute__((vector_size(32)));

// Unaligned loads and stores, by copy so that no vector crosses a function boundary by value.
VIDEO_RNN_INLINE void load(Lanes* to, const float* from) { std::memcpy(to, from, sizeof(Lanes)); }
VIDEO_RNN_INLINE void store(float* to, const Lanes* from) { std::memcpy(to, from, sizeof(Lanes)); }

// B^T applied to six values (one column or row of a tile).
VIDEO_RNN_INLINE void input_rows(const Lanes* d, int64_t step, Lanes* t, int64_t out_step) {
  const Lanes d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step], d5 = d[5 * step];
  t[0] = 4.0f * d0 - 5.0f * d2 + d4;
  t[out_step] = -4.0f * (d1 + d2) + d3 + d4;
  t[2 * out_step] = 4.0f * (d1 - d2) - d3 + d4;
  t[3 * out_step] = 2.0f * (d3 - d1) - d2 + d4;
  t[4 * out_step] = 2.0f * (d1 - d3) - d2 + d4;
  t[5 * out_step] = 4.0f * d1 - 5.0f * d3 + d5;
}

// A^T applied to six values, giving four.
VIDEO_RNN_INLINE void output_rows(const Lanes* m, int64_t step, Lanes* o, int64_t out_step) {
  const Lanes a = m[step] + m[2 * step], b = m[step] - m[2 * step];
  const Lanes c = m[3 * step] + m[4 * step], e = m[3 * step] - m[4 * step];
  o[0] = m[0] + a + c;
  o[out_step] = b + 2.0f * e;
  o[2 * out_step] = a + 4.0f * c;
  o[3 * out_step] = b + 8.0f * e + m[5 * step];
}

// The `count` tiles of the block starting at tile `first`: NHWC input -> V[36][block][in].
VIDEO_RNN_INLINE void transform_input(const float* x, const Geometry& g, int64_t first, int64_t count, int64_t block, float* v) {
  const float* rows[kPoints];
  Lanes d[kPoints], t[kPoints], r[kPoints];
  const int64_t per_image = g.tiles_y * g.tiles_x;
  for (int64_t tile = 0; tile < count; ++tile) {
    const int64_t index = first + tile;
    const int64_t n = index / per_image, ty = (index % per_image) / g.tiles_x, tx = index % g.tiles_x;
    for (int64_t i = 0; i < kTile; ++i) {
      const int64_t y = ty * kOut - 1 + i;
      for (int64_t j = 0; j < kTile; ++j) {
        const int64_t xx = tx * kOut - 1 + j;
        const bool inside = y >= 0 && y < g.height && xx >= 0 && xx < g.width;
        rows[i * kTile + j] = inside ? x + ((n * g.height + y) * g.width + xx) * g.in : nullptr;
      }
    }
    for (int64_t c = 0; c < g.in; c += kLanes) {
      for (int64_t p = 0; p < kPoints; ++p) {
        if (rows[p] != nullptr) {
          load(&d[p], rows[p] + c);
        } else {
          d[p] = Lanes{};
        }
      }
      for (int64_t j = 0; j < kTile; ++j) input_rows(&d[j], kTile, &t[j], kTile);              // columns: B^T d
      for (int64_t i = 0; i < kTile; ++i) input_rows(&t[i * kTile], 1, &r[i * kTile], 1);  // rows: (B^T d) B
      for (int64_t p = 0; p < kPoints; ++p) store(v + (p * block + tile) * g.in + c, &r[p]);
    }
  }
}

// M[36][block][out] for the block's `count` tiles -> relu(A^T M A + bias) into the NHWC output.
VIDEO_RNN_INLINE void transform_output(const float* m, const float* bias, const Geometry& g, int64_t first, int64_t count,
                                       int64_t block, float* y) {
  Lanes e[kPoints], s[kOut * kTile], o[kOut * kOut];
  const Lanes zero{};
  const int64_t per_image = g.tiles_y * g.tiles_x;
  for (int64_t tile = 0; tile < count; ++tile) {
    const int64_t index = first + tile;
    const int64_t n = index / per_image, ty = (index % per_image) / g.tiles_x, tx = index % g.tiles_x;
    const int64_t rows = std::min(kOut, g.height - ty * kOut), cols = std::min(kOut, g.width - tx * kOut);
    for (int64_t c = 0; c < g.out; c += kLanes) {
      for (int64_t p = 0; p < kPoints; ++p) load(&e[p], m + (p * block + tile) * g.out + c);
      for (int64_t j = 0; j < kTile; ++j) output_rows(&e[j], kTile, &s[j], kTile);        // A^T M: 4 x 6
      for (int64_t i = 0; i < kOut; ++i) output_rows(&s[i * kTile], 1, &o[i * kOut], 1);  // (A^T M) A: 4 x 4
      Lanes b;
      load(&b, bias + c);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = y + ((n * g.height + ty * kOut + i) * g.width + tx * kOut) * g.out + c;
        for (int64_t j = 0; j < cols; ++j) {
          Lanes value = o[i * kOut + j] + b;
          value = value > zero ? value : zero;
          store(row + j * g.out, &value);
        }
      }
    }
  }
}

// C[rows x 16] (+)= A[rows x depth] B[depth x 16]: A row-major with stride lda, B packed 16 wide,
// C row-major with stride ldc. Rows x 2 accumulators of 8 lanes stay in registers (12 of AVX2's 16).
template <int Rows>
VIDEO_RNN_INLINE void multiply_panel(const float* a, int64_t lda, const float* b, int64_t depth,
                                                          float* c, int64_t ldc, bool accumulate) {
  Lanes sum[Rows][2];
  for (int r = 0; r < Rows; ++r) {
    if (accumulate) {
      load(&sum[r][0], c + r * ldc);
      load(&sum[r][1], c + r * ldc + kLanes);
    } else {
      sum[r][0] = Lanes{};
      sum[r][1] = Lanes{};
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    Lanes b0, b1;
    load(&b0, b + k * kPanel);
    load(&b1, b + k * kPanel + kLanes);
    for (int r = 0; r < Rows; ++r) {
      const float s = a[r * lda + k];
      sum[r][0] += s * b0;
      sum[r][1] += s * b1;
    }
  }
  for (int r = 0; r < Rows; ++r) {
    store(c + r * ldc, &sum[r][0]);
    store(c + r * ldc + kLanes, &sum[r][1]);
  }
}

// For each of the 36 points: M[p] = V[p] U[p], V[p] [count x in] (rows `block` apart between
// points), U[p] packed [out / 16][in][16], M[p] [count x out]. Depth in slices of kDepth so that a
// slice of a B panel stays in L1 while the rows of A stream past it.
VIDEO_RNN_INLINE void multiply_points(const float* v, const float* u, const Geometry& g, int64_t count, int64_t block, float* m) {
  const int64_t panels = g.out / kPanel;
  for (int64_t p = 0; p < kPoints; ++p) {
    const float* vp = v + p * block * g.in;
    const float* up = u + p * g.in * g.out;
    float* mp = m + p * block * g.out;
    for (int64_t panel = 0; panel < panels; ++panel) {
      for (int64_t k0 = 0; k0 < g.in; k0 += kDepth) {
        const int64_t depth = std::min(kDepth, g.in - k0);
        const float* b = up + (panel * g.in + k0) * kPanel;
        const bool accumulate = k0 > 0;
        int64_t row = 0;
        for (; row + kRows <= count; row += kRows) {
          multiply_panel<kRows>(vp + row * g.in + k0, g.in, b, depth, mp + row * g.out + panel * kPanel, g.out, accumulate);
        }
        float* c = mp + row * g.out + panel * kPanel;
        const float* a = vp + row * g.in + k0;
        switch (count - row) {
          case 5: multiply_panel<5>(a, g.in, b, depth, c, g.out, accumulate); break;
          case 4: multiply_panel<4>(a, g.in, b, depth, c, g.out, accumulate); break;
          case 3: multiply_panel<3>(a, g.in, b, depth, c, g.out, accumulate); break;
          case 2: multiply_panel<2>(a, g.in, b, depth, c, g.out, accumulate); break;
          case 1: multiply_panel<1>(a, g.in, b, depth, c, g.out, accumulate); break;
          default: break;
        }
      }
    }
  }
}

// One block of tiles: input transform, the 36 products, output transform.
VIDEO_RNN_INLINE void process_block(const float* x, const float* u, const float* bias, const Geometry& g, int64_t first,
                                    int64_t count, int64_t block, float* v, float* m, float* y) {
  transform_input(x, g, first, count, block, v);
  multiply_points(v, u, g, count, block, m);
  transform_output(m, bias, g, first, count, block, y);
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
#endif

BlockKernel block_kernel() {
#ifdef VIDEO_RNN_AVX2_KERNELS
  static const BlockKernel chosen =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? process_block_avx2 : process_block_baseline;
  return chosen;
#else
  return process_block_baseline;
#endif
}

}  // namespace

bool winograd_runs_in_parallel() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
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

torch::Tensor winograd_conv3x3_relu(const torch::Tensor& input, const WinogradFilter& filter) {
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
  const BlockKernel kernel = block_kernel();
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v(static_cast<size_t>(kPoints * block * g.in));
    std::vector<float> m(static_cast<size_t>(kPoints * block * g.out));
    for (int64_t index = begin; index < end; ++index) {
      const int64_t first = index * block;
      kernel(xs, u, bias, g, first, std::min(block, tiles - first), block, v.data(), m.data(), ys);
    }
  });
  return y;
}

}  // namespace video_rnn
