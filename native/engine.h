#pragma once
// One model on one device, and every operation on it: predict, evaluate, embed, one training step,
// named tensors in and out. Calls are serialised by a mutex; each call sets the thread's intra-op
// thread count first, because that setting is per OS thread and calls arrive on pool threads.
#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "distributed.h"
#include "embedding_cache.h"
#include "optimizer_state.h"
#include "phase_times.h"
#include "state.h"
#include "video_rnn.h"

namespace video_rnn {

struct EngineConfig {
  VideoRNNOptions model;
  std::string device = "cpu";      // "cpu", "cuda", "cuda:N"
  std::string precision = "fp32";  // "fp32", "bf16", "fp16" (autocast)
  int64_t seed = -1;               // < 0: leave the generator as it is
  int64_t threads = 0;             // intra-op threads; 0: the machine's parallelism
  int64_t chunk_frames = 32;       // frames per CNN chunk, bounds activation memory
  int64_t cache_bytes = int64_t{1} << 30;
  bool channels_last = true;
  bool prepacked_convolutions = true;  // oneDNN-blocked conv weights where no autograd/autocast runs
  bool bf16_prepacked_convolutions = false;  // bf16 autocast's convolutions prepacked in bf16 instead
  bool winograd_convolutions = true;   // within that path, Winograd F(4x4, 3x3) where it applies
  bool pooled_fc6 = true;              // fc6 folded with the average pool below 224 px (pooled_fc6.h)
  WinogradKernel winograd_kernel = WinogradKernel::kAuto;  // its products kernel (winograd.h)
  bool huge_pages = true;          // CPU tensors of 4 MiB or more in huge pages, process-wide (memory.h)
};

// One clip of a batch: uint8 frames [T, H, W, 3] on the CPU, its fc7 rows already computed
// (`embeddings`, float32 [T, 4096] on the CPU: the CNN does not run for it), or only a cache key
// whose embeddings are cached. With `store`, its embeddings (computed or given) are kept under
// `cache_key`.
struct ClipInput {
  torch::Tensor frames;
  torch::Tensor embeddings;
  std::string cache_key;
  bool store = false;
};

struct TrainSettings {
  std::string optimizer = "adam";  // "adam" or "sgd"
  double learning_rate = 1e-3;
  double backbone_learning_rate = 1e-4;
  double weight_decay = 0.0;
  double momentum = 0.9;
  int64_t trainable_backbone_layers = 0;
  bool operator==(const TrainSettings& other) const;
};

struct BatchOutput {
  torch::Tensor probabilities;  // [B, classes], float, CPU, caller's order
  double loss = 0.0;            // mean cross-entropy when labels were given
  bool stepped = false;         // false when a non-finite loss stopped the optimiser step
};

struct Counters {
  int64_t frames_embedded = 0;
  int64_t cache_hits = 0;
  int64_t cache_entries = 0;
  int64_t cache_bytes = 0;
  ConvolutionCounts convolutions{};  // per path, one per convolution layer per forward
  int64_t pooled_fc6 = 0;            // forwards whose fc6 ran folded with the pool (pooled_fc6.h)
};

class Engine {
 public:
  explicit Engine(const EngineConfig& config);

  BatchOutput predict(const std::vector<ClipInput>& clips);
  BatchOutput evaluate(const std::vector<ClipInput>& clips, const std::vector<int64_t>& labels);
  BatchOutput train_step(const std::vector<ClipInput>& clips, const std::vector<int64_t>& labels);
  // fc7 per frame, one [T, 4096] CPU tensor per clip, in the caller's order.
  std::vector<torch::Tensor> embed(const std::vector<ClipInput>& clips);

  void configure_training(const TrainSettings& settings);
  TrainSettings training_settings();

  NamedTensors state(const std::set<std::string>& skip = {});
  // What a resumed run needs beside the weights: the optimiser's moments and steps, the CPU generator.
  OptimizerState optimizer_state();
  void load_optimizer_state(const OptimizerState& state);
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes();
  void load_state(const NamedTensors& tensors, const std::string& prefix, bool require_all);

  // Joins a process group (blocks until every rank is there) and takes rank 0's parameters.
  void join_group(const DistributedConfig& config);
  // Elementwise sums over the group's ranks; the values themselves when not in a group.
  std::vector<double> sum_over_ranks(const std::vector<double>& values);

  // A digest of the backbone's weights: part of every embedding-cache key.
  std::string backbone_fingerprint();
  bool is_cached(const std::string& key) const { return cache_.contains(key); }
  void clear_cache() { cache_.clear(); }
  Counters counters() const;
  // Wall time per phase of the calls so far (see phase_times.h); read without the lock, as counters.
  PhaseTotals phase_totals() const;
  int64_t parameter_bytes() const;

 private:
  void prepare_thread() const;
  PackedSequence packed_embeddings(const std::vector<ClipInput>& clips, bool use_cache);
  torch::Tensor forward_logits(const std::vector<ClipInput>& clips, bool use_cache);
  torch::Tensor labels_tensor(const std::vector<int64_t>& labels) const;
  void rebuild_optimizer();
  std::vector<torch::Tensor> trainable_parameters() const;

  EngineConfig config_;
  torch::Device device_;
  VideoRNN model_{nullptr};
  TrainSettings settings_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<DataParallel> group_;
  EmbeddingCache cache_;
  std::atomic<int64_t> frames_embedded_{0};
  PhaseTimes phases_;
  std::mutex mutex_;
};

}  // namespace video_rnn
