#include "packing.h"

namespace video_rnn {

PackedSequence pack_clips(const std::vector<torch::Tensor>& clips) {
  TORCH_CHECK(!clips.empty(), "a batch needs at least one clip");
  return torch::nn::utils::rnn::pack_sequence(clips, /*enforce_sorted=*/false);
}

PackedSequence packed_to(const PackedSequence& packed, const torch::Device& device) {
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  return PackedSequence(packed.data().to(device), packed.batch_sizes(),
                        move(packed.sorted_indices()), move(packed.unsorted_indices()));
}

PackedSequence elementwise_apply(const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                                 const PackedSequence& packed, int64_t chunk_rows) {
  TORCH_CHECK(chunk_rows > 0, "chunk_rows must be positive");
  const auto& data = packed.data();
  const int64_t rows = data.size(0);
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < rows; start += chunk_rows) {
    outputs.push_back(fn(data.narrow(0, start, std::min(chunk_rows, rows - start))));
  }
  auto mapped = outputs.size() == 1 ? outputs.front() : torch::cat(outputs, 0);
  return PackedSequence(mapped, packed.batch_sizes(), packed.sorted_indices(), packed.unsorted_indices());
}

std::vector<torch::Tensor> packed_rows(const PackedSequence& packed, const std::vector<int64_t>& lengths) {
  // Step t of the clip at sorted position r is row offset[t] + r: packing stores step 0 of every
  // clip, then step 1 of the clips still running, and so on, longest clip first.
  auto batch_sizes = packed.batch_sizes().to(torch::kCPU).to(torch::kLong);
  const auto sizes = batch_sizes.accessor<int64_t, 1>();
  std::vector<int64_t> offsets(sizes.size(0) + 1, 0);
  for (int64_t t = 0; t < sizes.size(0); ++t) offsets[t + 1] = offsets[t] + sizes[t];
  torch::Tensor unsorted = packed.unsorted_indices().defined()
      ? packed.unsorted_indices().to(torch::kCPU).to(torch::kLong)
      : torch::arange(static_cast<int64_t>(lengths.size()), torch::kLong);
  const auto position = unsorted.accessor<int64_t, 1>();
  std::vector<torch::Tensor> rows;
  rows.reserve(lengths.size());
  for (size_t clip = 0; clip < lengths.size(); ++clip) {
    auto index = torch::empty({lengths[clip]}, torch::kLong);
    auto out = index.accessor<int64_t, 1>();
    for (int64_t t = 0; t < lengths[clip]; ++t) out[t] = offsets[t] + position[clip];
    rows.push_back(index);
  }
  return rows;
}

torch::Tensor normalize_frames(const torch::Tensor& frames) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "frames must be [N, H, W, 3]");
  auto options = torch::TensorOptions().dtype(torch::kFloat).device(frames.device());
  // ImageNet statistics, as torchvision's pretrained VGG16 expects (torchvision docs).
  static const std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  static const std::vector<float> std = {0.229f, 0.224f, 0.225f};
  auto std_t = torch::tensor(std, options).view({1, 3, 1, 1});
  // (x / 255 - mean) / std, folded into one scale and one shift.
  auto scale_t = std_t * 255.0f;
  auto shift_t = torch::tensor(mean, options).view({1, 3, 1, 1}) / std_t;
  // A permuted NHWC tensor is NCHW with channels-last strides: no copy until the float conversion.
  auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat);
  return x.div_(scale_t).sub_(shift_t);
}

}  // namespace video_rnn
