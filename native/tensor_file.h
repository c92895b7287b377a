#pragma once
// Tensors read from byte ranges of an open file straight into LibTorch memory, on the calling
// (worker) thread. The caller opened the file, parsed and checked its index
// (src/weights/safetensors.ts) and keeps it open until this returns, so the bytes read are those of
// the file it checked, even if a new file has been renamed over its path since.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "state.h"

namespace video_rnn {

struct TensorRange {
  std::string name;
  std::vector<int64_t> shape;
  torch::ScalarType dtype = torch::kFloat;  // little-endian, as stored
  int64_t offset = 0;                       // from the start of the file
  int64_t bytes = 0;
};

// One CPU tensor per range, in the range's dtype, read from the descriptor `fd` (not closed here).
// Throws std::runtime_error starting with `label` (the file's path) when a range's size does not
// match its shape and dtype, when a read fails, or when the file ends before a range does.
NamedTensors read_tensor_ranges(int fd, const std::string& label, const std::vector<TensorRange>& ranges);

}  // namespace video_rnn
