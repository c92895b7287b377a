#pragma once
// From uint8 RGB clips to a real PackedSequence, and back to per-clip rows.
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace video_rnn {

using torch::nn::utils::rnn::PackedSequence;

// Packs clips of different lengths (each uint8 [T, H, W, 3] or float [T, D]) with
// enforce_sorted=false, so the result carries sorted_indices and unsorted_indices.
PackedSequence pack_clips(const std::vector<torch::Tensor>& clips);

// The same PackedSequence with its data and index tensors on `device` (batch_sizes stay on the CPU,
// as PyTorch requires).
PackedSequence packed_to(const PackedSequence& packed, const torch::Device& device);

// Applies fn to packed.data() in chunks of at most `chunk_rows` rows, so that memory stays bounded,
// and keeps batch_sizes, sorted_indices and unsorted_indices: the output is in the caller's order.
PackedSequence elementwise_apply(const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                                 const PackedSequence& packed, int64_t chunk_rows);

// For each clip (in the caller's order), the rows of packed.data() holding its steps, in time order.
std::vector<torch::Tensor> packed_rows(const PackedSequence& packed, const std::vector<int64_t>& lengths);

// uint8 [N, H, W, 3] -> float [N, 3, H, W] scaled to [0, 1] and normalised with ImageNet's mean
// and std, computed on the tensor's own device. The result keeps channels-last strides.
torch::Tensor normalize_frames(const torch::Tensor& frames);

}  // namespace video_rnn
