#include "embedding_cache.h"

namespace video_rnn {

bool EmbeddingCache::contains(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rows_.count(key) != 0;
}

std::optional<torch::Tensor> EmbeddingCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = rows_.find(key);
  if (found == rows_.end()) return std::nullopt;
  ++hits_;
  return found->second;
}

bool EmbeddingCache::put(const std::string& key, const torch::Tensor& rows) {
  // float32 whatever precision computed them, so cached and uncached runs feed the LSTM alike.
  auto stored = rows.detach().to(torch::kCPU, torch::kFloat).contiguous().clone();
  const int64_t size = static_cast<int64_t>(stored.numel() * stored.element_size());
  std::lock_guard<std::mutex> lock(mutex_);
  if (rows_.count(key) != 0 || bytes_ + size > max_bytes_) return false;
  rows_.emplace(key, stored);
  bytes_ += size;
  return true;
}

void EmbeddingCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  rows_.clear();
  bytes_ = 0;
}

int64_t EmbeddingCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(rows_.size());
}

int64_t EmbeddingCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

int64_t EmbeddingCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

}  // namespace video_rnn
