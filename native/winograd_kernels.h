#pragma once
// The building blocks of winograd.cpp's kernels, included there only: the transforms and the
// matrix products, as templates over the vector width, always inlined so that each kernel there
// compiles them for its own instruction set. Nothing here is compiled on its own.
#include <algorithm>
#include <cstdint>
#include <cstring>

#define VIDEO_RNN_INLINE __attribute__((always_inline)) inline

namespace video_rnn {
namespace winograd_detail {

constexpr int64_t kLanes = 8;  // the narrowest vector: input channels come in multiples of it
constexpr int64_t kTile = 6;     // input tile side
constexpr int64_t kOut = 4;      // output tile side
constexpr int64_t kPoints = 36;  // kTile * kTile
// The 8-lane matrix products: 6 rows by 16 columns of the output per step, 256 deep at most
// (the 16-lane ones: kRows16, kPanels16, kSliceFloats below).
constexpr int64_t kRows = 6;
constexpr int64_t kPanel = 16;
constexpr int64_t kDepth = 256;
// Bytes of transformed input and output per block of tiles, small enough to stay in cache between
// the input transform, the matrix products and the output transform; but at least kMinBlock tiles,
// so that each slice of a filter panel serves enough rows. Both measured on a 2-core
// Zen 3 (512 KiB L2 per core): no other size tried (0.75 to 4 MiB, 32 to 128 tiles, 128 or 512
// deep) ran VGG16 measurably faster. The AVX-512 kernel uses the same blocks, not tuned apart.
constexpr int64_t kBlockBytes = int64_t{2} << 20;
constexpr int64_t kMinBlock = 64;

struct Geometry {
  int64_t height, width, in, out, tiles_y, tiles_x;
};

// Eight or sixteen floats as one value; GCC and Clang lower the arithmetic to the vector
// instructions of the function it is inlined into (AVX-512, AVX, SSE or NEON).
typedef float Lanes __attribute__((vector_size(32)));
typedef float Lanes16 __attribute__((vector_size(64)));

// Unaligned loads and stores, by copy so that no vector crosses a function boundary by value.
template <typename V>
VIDEO_RNN_INLINE void load(V* to, const float* from) { std::memcpy(to, from, sizeof(V)); }
template <typename V>
VIDEO_RNN_INLINE void store(float* to, const V* from) { std::memcpy(to, from, sizeof(V)); }
template <typename V>
constexpr int64_t lanes_of() { return static_cast<int64_t>(sizeof(V) / sizeof(float)); }

// B^T applied to six values (one column or row of a tile).
template <typename Lanes>
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
template <typename Lanes>
VIDEO_RNN_INLINE void output_rows(const Lanes* m, int64_t step, Lanes* o, int64_t out_step) {
  const Lanes a = m[step] + m[2 * step], b = m[step] - m[2 * step];
  const Lanes c = m[3 * step] + m[4 * step], e = m[3 * step] - m[4 * step];
  o[0] = m[0] + a + c;
  o[out_step] = b + 2.0f * e;
  o[2 * out_step] = a + 4.0f * c;
  o[3 * out_step] = b + 8.0f * e + m[5 * step];
}

// The `count` tiles of the block starting at tile `first`: NHWC input -> V[36][block][in].
template <typename Lanes>
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
    for (int64_t c = 0; c < g.in; c += lanes_of<Lanes>()) {
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
template <typename Lanes>
VIDEO_RNN_INLINE void transform_output(const float* m, const float* bias, const Geometry& g, int64_t first, int64_t count,
                                       int64_t block, float* y) {
  Lanes e[kPoints], s[kOut * kTile], o[kOut * kOut];
  const Lanes zero{};
  const int64_t per_image = g.tiles_y * g.tiles_x;
  for (int64_t tile = 0; tile < count; ++tile) {
    const int64_t index = first + tile;
    const int64_t n = index / per_image, ty = (index % per_image) / g.tiles_x, tx = index % g.tiles_x;
    const int64_t rows = std::min(kOut, g.height - ty * kOut), cols = std::min(kOut, g.width - tx * kOut);
    for (int64_t c = 0; c < g.out; c += lanes_of<Lanes>()) {
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

// The AVX-512 products: Rows x Panels accumulators of 16 lanes (24 of AVX-512's 32 registers at
// 6 x 4), each filter vector loaded once per step and used by every row. Panels are `b_step`
// floats apart in the packed filter.
template <int Rows, int Panels>
VIDEO_RNN_INLINE void multiply_panels16(const float* a, int64_t lda, const float* b, int64_t b_step, int64_t depth,
                                        float* c, int64_t ldc, bool accumulate) {
  Lanes16 sum[Rows][Panels];
  for (int r = 0; r < Rows; ++r) {
    for (int q = 0; q < Panels; ++q) {
      if (accumulate) {
        load(&sum[r][q], c + r * ldc + q * kPanel);
      } else {
        sum[r][q] = Lanes16{};
      }
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    Lanes16 bk[Panels];
    for (int q = 0; q < Panels; ++q) load(&bk[q], b + q * b_step + k * kPanel);
    for (int r = 0; r < Rows; ++r) {
      const float s = a[r * lda + k];
      for (int q = 0; q < Panels; ++q) sum[r][q] += s * bk[q];
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int q = 0; q < Panels; ++q) store(c + r * ldc + q * kPanel, &sum[r][q]);
  }
}

constexpr int kRows16 = 6;
constexpr int kPanels16 = 4;
// Floats of filter per depth slice (32 KiB), so that the slice stays in L1 while the rows stream past.
constexpr int64_t kSliceFloats = 8192;

// The last `left` (< Rows) rows of a panel group.
template <int Rows, int Panels>
VIDEO_RNN_INLINE void multiply_rest16(int64_t left, const float* a, int64_t lda, const float* b, int64_t b_step, int64_t depth,
                                      float* c, int64_t ldc, bool accumulate) {
  if constexpr (Rows > 0) {
    if (left == Rows) {
      multiply_panels16<Rows, Panels>(a, lda, b, b_step, depth, c, ldc, accumulate);
    } else {
      multiply_rest16<Rows - 1, Panels>(left, a, lda, b, b_step, depth, c, ldc, accumulate);
    }
  }
}

// Every row of one group of Panels panels, in depth slices.
template <int Panels>
VIDEO_RNN_INLINE void multiply_group16(const float* vp, const float* up, const Geometry& g, int64_t count, int64_t panel, float* mp) {
  const int64_t b_step = g.in * kPanel;
  const int64_t slice = kSliceFloats / (Panels * kPanel);
  for (int64_t k0 = 0; k0 < g.in; k0 += slice) {
    const int64_t depth = std::min(slice, g.in - k0);
    const float* b = up + (panel * g.in + k0) * kPanel;
    const bool accumulate = k0 > 0;
    int64_t row = 0;
    for (; row + kRows16 <= count; row += kRows16) {
      multiply_panels16<kRows16, Panels>(vp + row * g.in + k0, g.in, b, b_step, depth, mp + row * g.out + panel * kPanel, g.out,
                                         accumulate);
    }
    multiply_rest16<kRows16 - 1, Panels>(count - row, vp + row * g.in + k0, g.in, b, b_step, depth,
                                         mp + row * g.out + panel * kPanel, g.out, accumulate);
  }
}

// multiply_points with 16-lane products: groups of four panels, then two, then one.
VIDEO_RNN_INLINE void multiply_points16(const float* v, const float* u, const Geometry& g, int64_t count, int64_t block, float* m) {
  const int64_t panels = g.out / kPanel;
  for (int64_t p = 0; p < kPoints; ++p) {
    const float* vp = v + p * block * g.in;
    const float* up = u + p * g.in * g.out;
    float* mp = m + p * block * g.out;
    int64_t panel = 0;
    for (; panel + kPanels16 <= panels; panel += kPanels16) multiply_group16<kPanels16>(vp, up, g, count, panel, mp);
    for (; panel + 2 <= panels; panel += 2) multiply_group16<2>(vp, up, g, count, panel, mp);
    for (; panel < panels; ++panel) multiply_group16<1>(vp, up, g, count, panel, mp);
  }
}


}  // namespace winograd_detail
}  // namespace video_rnn
