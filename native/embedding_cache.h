#pragma once
// Per-sample fc7 embeddings kept after they are first computed, so that later epochs with a
// frozen backbone neither decode nor run the CNN. The key is made by the caller (sample id,
// sampling, frame size, backbone fingerprint). Safe to query from any thread.
#include <torch/torch.h>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace video_rnn {

class EmbeddingCache {
 public:
  explicit EmbeddingCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

  bool contains(const std::string& key) const;
  std::optional<torch::Tensor> get(const std::string& key);
  // Keeps `rows` ([T, 4096], as float32 on the CPU) unless the budget is spent. Once full it stops
  // admitting rather than evicting: epochs visit every sample once, and evicting the oldest entry
  // under such a scan would make every later lookup miss.
  bool put(const std::string& key, const torch::Tensor& rows);
  void clear();

  int64_t entries() const;
  int64_t bytes() const;
  int64_t hits() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, torch::Tensor> rows_;
  int64_t max_bytes_;
  int64_t bytes_ = 0;
  int64_t hits_ = 0;
};

}  // namespace video_rnn
