#include "engine.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "compat.h"
#include "memory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

namespace video_rnn {
namespace {

torch::Device parse_device(const std::string& name) {
  torch::Device device(name);
  TORCH_CHECK(!device.is_cuda() || torch::cuda::is_available(), "CUDA is not available in this LibTorch build");
  TORCH_CHECK(!device.is_cuda() || device.index() < static_cast<int>(torch::cuda::device_count()),
              "no CUDA device ", device.str());
  return device;
}

// Autocast is thread-local: enable it for the duration of one call on the calling thread.
class AutocastScope {
 public:
  AutocastScope(const std::string& precision, const torch::Device& device) : device_type_(device.type()) {
    if (precision == "fp32") return;
    compat::set_autocast(device_type_, true, precision == "fp16" ? at::kHalf : at::kBFloat16);
    active_ = true;
  }
  ~AutocastScope() {
    if (!active_) return;
    compat::set_autocast(device_type_, false, at::kFloat);
    at::autocast::clear_cache();
  }

 private:
  c10::DeviceType device_type_;
  bool active_ = false;
};

// Wraps one engine call: its phases and whole duration go to `times`; at the end, the memory its
// activations freed goes back to the system (memory.h says why).
class CallTiming {
 public:
  explicit CallTiming(PhaseTimes& times) : active_(&times), whole_(Phase::kCall) { times.count_call(); }
  ~CallTiming() { return_free_memory(); }
  CallTiming(const CallTiming&) = delete;
  CallTiming& operator=(const CallTiming&) = delete;

 private:
  ActivePhaseTimes active_;
  PhaseTimer whole_;
};

void check_frames(const torch::Tensor& frames) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
              "a clip must be uint8 frames [T, H, W, 3]");
  TORCH_CHECK(frames.size(0) > 0, "a clip needs at least one frame");
  TORCH_CHECK(frames.size(1) >= kMinFrameSize && frames.size(2) >= kMinFrameSize,
              "frames must be at least ", kMinFrameSize, " px on each side, got ", frames.size(1), "x", frames.size(2));
}

void check_embeddings(const torch::Tensor& rows) {
  TORCH_CHECK(rows.dim() == 2 && rows.size(1) == kEmbeddingSize && rows.scalar_type() == torch::kFloat,
              "clip embeddings must be float32 [T, ", kEmbeddingSize, "]");
  TORCH_CHECK(rows.size(0) > 0, "a clip needs at least one frame");
}

}  // namespace

bool TrainSettings::operator==(const TrainSettings& other) const {
  return optimizer == other.optimizer && learning_rate == other.learning_rate &&
         backbone_learning_rate == other.backbone_learning_rate && weight_decay == other.weight_decay &&
         momentum == other.momentum && trainable_backbone_layers == other.trainable_backbone_layers;
}

Engine::Engine(const EngineConfig& config)
    : config_(config), device_(parse_device(config.device)), cache_(config.cache_bytes) {
  TORCH_CHECK(config.model.classes >= 2, "a classifier needs at least 2 classes");
  TORCH_CHECK(config.model.hidden_size > 0 && config.model.head_size > 0 && config.model.num_layers > 0,
              "hidden, head and layer sizes must be positive");
  TORCH_CHECK(config.chunk_frames > 0, "chunk_frames must be positive");
  if (config_.threads <= 0) config_.threads = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  prepare_thread();
  // Before the model exists, so that its weights are allocated in huge pages too.
  if (config.huge_pages) use_huge_page_allocator();
  if (config.seed >= 0) torch::manual_seed(static_cast<uint64_t>(config.seed));
  model_ = VideoRNN(config.model);
  model_->embedding->use_prepacked_convolutions(config.prepacked_convolutions);
  model_->embedding->use_bf16_prepacked_convolutions(config.bf16_prepacked_convolutions);
  model_->embedding->use_winograd_convolutions(config.winograd_convolutions);
  model_->embedding->use_pooled_fc6(config.pooled_fc6);
  model_->embedding->use_winograd_kernel(config.winograd_kernel);
  model_->to(device_);
  if (config.channels_last) {
    // LibTorch 1.13 has no Module::to(MemoryFormat): convert the 4-D conv weights one by one.
    torch::NoGradGuard no_grad;
    for (auto& parameter : model_->embedding->parameters()) {
      if (parameter.dim() == 4) parameter.set_data(parameter.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  model_->set_mode(false);
  rebuild_optimizer();
}

void Engine::prepare_thread() const {
  if (at::get_num_threads() != config_.threads) at::set_num_threads(static_cast<int>(config_.threads));
}

PackedSequence Engine::packed_embeddings(const std::vector<ClipInput>& clips, bool use_cache) {
  TORCH_CHECK(!clips.empty(), "a batch needs at least one clip");
  std::vector<torch::Tensor> cached(clips.size());
  std::vector<torch::Tensor> frames;
  std::vector<size_t> computed;
  for (size_t i = 0; i < clips.size(); ++i) {
    if (clips[i].embeddings.defined()) {
      check_embeddings(clips[i].embeddings);
      cached[i] = clips[i].embeddings;
      if (use_cache && clips[i].store && !clips[i].cache_key.empty()) cache_.put(clips[i].cache_key, clips[i].embeddings);
      continue;
    }
    if (use_cache && !clips[i].cache_key.empty() && !clips[i].frames.defined()) {
      auto hit = cache_.get(clips[i].cache_key);
      TORCH_CHECK(hit.has_value(), "no cached embeddings for ", clips[i].cache_key);
      cached[i] = *hit;
      continue;
    }
    TORCH_CHECK(clips[i].frames.defined(), "clip ", i, " has neither frames nor cached embeddings");
    check_frames(clips[i].frames);
    TORCH_CHECK(frames.empty() || clips[i].frames.sizes().slice(1) == frames.front().sizes().slice(1),
                "all clips of a batch must have the same frame size");
    frames.push_back(clips[i].frames);
    computed.push_back(i);
  }
  if (!frames.empty()) {
    auto packed = packed_to(pack_clips(frames), device_);
    auto embedded = model_->embed(packed, config_.chunk_frames);
    frames_embedded_ += packed.data().size(0);
    const bool storing = use_cache && std::any_of(clips.begin(), clips.end(), [](const ClipInput& c) { return c.store; });
    // The usual case, every clip through the CNN: hand the packed embeddings straight to the LSTM.
    if (computed.size() == clips.size() && !storing) return embedded;
    std::vector<int64_t> lengths;
    for (auto& clip : frames) lengths.push_back(clip.size(0));
    auto rows = packed_rows(embedded, lengths);
    for (size_t k = 0; k < computed.size(); ++k) {
      auto clip_rows = embedded.data().index_select(0, rows[k].to(device_));
      cached[computed[k]] = clip_rows;
      const auto& input = clips[computed[k]];
      if (use_cache && input.store && !input.cache_key.empty()) cache_.put(input.cache_key, clip_rows);
    }
    if (computed.size() == clips.size()) return embedded;
  }
  for (auto& rows : cached) rows = rows.to(device_, torch::kFloat);
  return packed_to(pack_clips(cached), device_);
}

torch::Tensor Engine::forward_logits(const std::vector<ClipInput>& clips, bool use_cache) {
  AutocastScope autocast(config_.precision, device_);
  const bool backbone_frozen = !torch::GradMode::is_enabled() || model_->embedding->trainable_layers() == 0;
  auto embeddings = [&] {
    if (!backbone_frozen) {
      // Rows computed elsewhere carry no gradient to the layers this step trains.
      for (const auto& clip : clips) TORCH_CHECK(!clip.embeddings.defined(), "embeddings cannot stand in for frames while backbone layers train");
      return packed_embeddings(clips, false);
    }
    torch::NoGradGuard no_grad;
    return packed_embeddings(clips, use_cache);
  }();
  PhaseTimer timer(Phase::kSequence);
  return model_->classify(embeddings).to(torch::kFloat);
}

torch::Tensor Engine::labels_tensor(const std::vector<int64_t>& labels) const {
  for (auto label : labels) {
    TORCH_CHECK(label >= 0 && label < config_.model.classes, "label ", label, " is outside 0..", config_.model.classes - 1);
  }
  return torch::tensor(labels, torch::kLong).to(device_);
}

BatchOutput Engine::predict(const std::vector<ClipInput>& clips) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  CallTiming timing(phases_);
  torch::NoGradGuard no_grad;
  model_->set_mode(false);
  BatchOutput out;
  out.probabilities = torch::softmax(forward_logits(clips, true), 1).to(torch::kCPU);
  return out;
}

BatchOutput Engine::evaluate(const std::vector<ClipInput>& clips, const std::vector<int64_t>& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  CallTiming timing(phases_);
  TORCH_CHECK(labels.size() == clips.size(), "one label per clip is needed");
  torch::NoGradGuard no_grad;
  model_->set_mode(false);
  auto logits = forward_logits(clips, true);
  BatchOutput out;
  out.loss = torch::nn::functional::cross_entropy(logits, labels_tensor(labels)).item<double>();
  out.probabilities = torch::softmax(logits, 1).to(torch::kCPU);
  return out;
}

BatchOutput Engine::train_step(const std::vector<ClipInput>& clips, const std::vector<int64_t>& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  CallTiming timing(phases_);
  TORCH_CHECK(labels.size() == clips.size(), "one label per clip is needed");
  auto targets = labels_tensor(labels);
  model_->set_mode(true);
  optimizer_->zero_grad();
  auto logits = forward_logits(clips, model_->embedding->trainable_layers() == 0);
  auto loss = torch::nn::functional::cross_entropy(logits, targets);
  BatchOutput out;
  out.loss = loss.item<double>();
  out.probabilities = torch::softmax(logits.detach(), 1).to(torch::kCPU);
  // A non-finite loss would poison every weight through the step: report it, change nothing.
  // In a group every rank must agree, or the others would wait forever in the gradient allreduce.
  bool finite = std::isfinite(out.loss);
  if (group_) finite = group_->sum({finite ? 0.0 : 1.0}).front() == 0.0;
  if (finite) {
    PhaseTimer timer(Phase::kOptimizer);
    loss.backward();
    if (group_) group_->average_gradients(trainable_parameters());
    optimizer_->step();
    out.stepped = true;
  }
  model_->set_mode(false);
  return out;
}

std::vector<torch::Tensor> Engine::embed(const std::vector<ClipInput>& clips) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  CallTiming timing(phases_);
  torch::NoGradGuard no_grad;
  model_->set_mode(false);
  AutocastScope autocast(config_.precision, device_);
  std::vector<torch::Tensor> frames;
  std::vector<int64_t> lengths;
  std::vector<torch::Tensor> out(clips.size());
  std::vector<size_t> computed;
  for (size_t i = 0; i < clips.size(); ++i) {
    const auto& clip = clips[i];
    if (clip.embeddings.defined()) {
      check_embeddings(clip.embeddings);
      out[i] = clip.embeddings.clone();
      continue;
    }
    TORCH_CHECK(clip.frames.defined(), "embed needs frames");
    check_frames(clip.frames);
    frames.push_back(clip.frames);
    lengths.push_back(clip.frames.size(0));
    computed.push_back(i);
  }
  if (frames.empty()) return out;
  auto embedded = model_->embed(packed_to(pack_clips(frames), device_), config_.chunk_frames);
  frames_embedded_ += embedded.data().size(0);
  auto data = embedded.data().to(torch::kCPU, torch::kFloat);
  const auto rows = packed_rows(embedded, lengths);
  for (size_t k = 0; k < computed.size(); ++k) out[computed[k]] = data.index_select(0, rows[k]);
  return out;
}

void Engine::configure_training(const TrainSettings& settings) {
  std::lock_guard<std::mutex> lock(mutex_);
  TORCH_CHECK(settings.optimizer == "adam" || settings.optimizer == "sgd", "unknown optimizer ", settings.optimizer);
  if (settings == settings_ && optimizer_) return;
  const bool backbone_changed = settings.trainable_backbone_layers != settings_.trainable_backbone_layers;
  settings_ = settings;
  model_->embedding->set_trainable_layers(settings.trainable_backbone_layers);
  if (backbone_changed) cache_.clear();
  rebuild_optimizer();
}

TrainSettings Engine::training_settings() {
  std::lock_guard<std::mutex> lock(mutex_);
  return settings_;
}

std::vector<torch::Tensor> Engine::trainable_parameters() const {
  std::vector<torch::Tensor> parameters;
  for (auto& p : model_->lstm->parameters()) parameters.push_back(p);
  for (auto& p : model_->classifier->parameters()) parameters.push_back(p);
  for (auto& p : model_->embedding->parameters()) if (p.requires_grad()) parameters.push_back(p);
  return parameters;
}

void Engine::join_group(const DistributedConfig& config) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  TORCH_CHECK(!group_, "this model is already in a process group");
  auto placed = config;
  placed.device = device_.str();
  auto group = std::make_unique<DataParallel>(placed);
  // Every parameter, frozen ones included: ranks may have started from different random weights.
  group->broadcast(model_->parameters());
  group_ = std::move(group);
  cache_.clear();
  rebuild_optimizer();
}

std::vector<double> Engine::sum_over_ranks(const std::vector<double>& values) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  return group_ ? group_->sum(values) : values;
}

void Engine::rebuild_optimizer() {
  std::vector<torch::Tensor> head, backbone;
  for (auto& p : model_->lstm->parameters()) head.push_back(p);
  for (auto& p : model_->classifier->parameters()) head.push_back(p);
  for (auto& p : model_->embedding->parameters()) if (p.requires_grad()) backbone.push_back(p);
  auto group = [&](std::vector<torch::Tensor> params, double lr) -> torch::optim::OptimizerParamGroup {
    if (settings_.optimizer == "sgd") {
      return {std::move(params), std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(lr).momentum(settings_.momentum).weight_decay(settings_.weight_decay))};
    }
    return {std::move(params), std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).weight_decay(settings_.weight_decay))};
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.push_back(group(head, settings_.learning_rate));
  if (!backbone.empty()) groups.push_back(group(backbone, settings_.backbone_learning_rate));
  if (settings_.optimizer == "sgd") {
    optimizer_ = std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(settings_.learning_rate));
  } else {
    optimizer_ = std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(settings_.learning_rate));
  }
}

NamedTensors Engine::state(const std::set<std::string>& skip) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  return export_state(*model_, skip);
}

OptimizerState Engine::optimizer_state() {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  return export_optimizer_state(*optimizer_, model_->named_parameters().pairs());
}

void Engine::load_optimizer_state(const OptimizerState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  import_optimizer_state(*optimizer_, model_->named_parameters().pairs(), state);
}

// No lock: shapes never change, and they are read from the JavaScript thread.
std::vector<std::pair<std::string, std::vector<int64_t>>> Engine::shapes() {
  return state_shapes(*model_);
}

void Engine::load_state(const NamedTensors& tensors, const std::string& prefix, bool require_all) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  import_state(*model_, tensors, prefix, require_all);
  // New weights: embeddings computed with the old backbone and the optimiser's moments are stale.
  cache_.clear();
  rebuild_optimizer();
}

std::string Engine::backbone_fingerprint() {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare_thread();
  torch::NoGradGuard no_grad;
  // Sums of values and of squares, per tensor, in float64: any training step or load changes them.
  // Summed in slices of 1M values: a float64 copy of fc6 at once would be a 820 MB transient, the
  // peak RSS of every call that keys the cache.
  constexpr int64_t kSlice = int64_t{1} << 20;
  uint64_t hash = 1469598103934665603ull;  // FNV-1a offset basis
  for (const auto& parameter : model_->embedding->parameters()) {
    auto flat = parameter.reshape({-1});
    double sums[2] = {0.0, 0.0};
    for (int64_t start = 0; start < flat.numel(); start += kSlice) {
      const auto slice = flat.narrow(0, start, std::min(kSlice, flat.numel() - start)).to(torch::kDouble);
      sums[0] += slice.sum().item<double>();
      sums[1] += slice.dot(slice).item<double>();
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(sums);
    for (size_t i = 0; i < sizeof(sums); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;  // FNV-1a prime
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// No lock: counters are read from the JavaScript thread while a call may be running.
Counters Engine::counters() const {
  return {frames_embedded_, cache_.hits(), cache_.entries(), cache_.bytes(), model_->embedding->convolution_counts(),
          model_->embedding->pooled_fc6_forwards()};
}

int64_t Engine::parameter_bytes() const {
  int64_t bytes = 0;
  for (const auto& p : model_->parameters()) bytes += p.numel() * p.element_size();
  return bytes;
}

PhaseTotals Engine::phase_totals() const { return phases_.totals(); }

}  // namespace video_rnn
