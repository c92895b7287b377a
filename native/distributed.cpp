#include "distributed.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VIDEO_RNN_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef VIDEO_RNN_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace video_rnn {

DataParallel::DataParallel(const DistributedConfig& config) : config_(config) {
  TORCH_CHECK(config.world_size >= 1, "worldSize must be at least 1");
  TORCH_CHECK(config.rank >= 0 && config.rank < config.world_size, "rank ", config.rank, " is outside 0..", config.world_size - 1);
  TORCH_CHECK(config.master_port > 0 && config.master_port < 65536, "masterPort must be between 1 and 65535");
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(config.master_port);
  store_options.isServer = config.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(config.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = config.timeout;
  store_ = compat::make_tcp_store(config.master_addr, store_options);
  if (config.backend == "gloo") {
#ifdef VIDEO_RNN_WITH_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create(config.timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(config.master_addr == "localhost" ? "127.0.0.1" : config.master_addr));
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(config.rank), static_cast<int>(config.world_size), options);
#else
    TORCH_CHECK(false, "video-rnn was built without Gloo's headers; install libgloo-dev and rebuild");
#endif
  } else if (config.backend == "nccl") {
#ifdef VIDEO_RNN_WITH_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = config.timeout;
    group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, static_cast<int>(config.rank), static_cast<int>(config.world_size), options);
#else
    TORCH_CHECK(false, "this LibTorch build has no NCCL; use backend 'gloo'");
#endif
  } else {
    TORCH_CHECK(false, "unknown backend ", config.backend, "; expected 'gloo' or 'nccl'");
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const auto& tensor : tensors) {
    std::vector<torch::Tensor> one = {tensor.is_contiguous() ? tensor : tensor.contiguous()};
    group_->broadcast(one)->wait(config_.timeout);
    if (!one.front().is_same(tensor)) tensor.copy_(one.front());
  }
}

void DataParallel::allreduce_bucket(std::vector<torch::Tensor>& gradients) {
  if (gradients.empty()) return;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& gradient : gradients) flat_parts.push_back(gradient.reshape({-1}));
  std::vector<torch::Tensor> bucket = {torch::cat(flat_parts)};
  group_->allreduce(bucket)->wait(config_.timeout);
  bucket.front().div_(static_cast<double>(config_.world_size));
  int64_t offset = 0;
  for (auto& gradient : gradients) {
    const int64_t count = gradient.numel();
    gradient.copy_(bucket.front().narrow(0, offset, count).view_as(gradient));
    offset += count;
  }
}

void DataParallel::average_gradients(std::vector<torch::Tensor> parameters) {
  torch::NoGradGuard no_grad;
  // One allreduce per bucket of about bucket_bytes, rather than one per tensor; every rank walks
  // the same parameters in the same order, so the buckets line up.
  std::vector<torch::Tensor> bucket;
  int64_t bytes = 0;
  for (auto& parameter : parameters) {
    auto& gradient = parameter.mutable_grad();
    if (!gradient.defined()) gradient = torch::zeros_like(parameter);
    bucket.push_back(gradient);
    bytes += gradient.numel() * gradient.element_size();
    if (bytes >= config_.bucket_bytes) {
      allreduce_bucket(bucket);
      bucket.clear();
      bytes = 0;
    }
  }
  allreduce_bucket(bucket);
}

std::vector<double> DataParallel::sum(const std::vector<double>& values) {
  if (values.empty()) return {};
  std::vector<torch::Tensor> tensors = {torch::tensor(values, torch::kDouble)};
  group_->allreduce(tensors)->wait(config_.timeout);
  auto result = tensors.front().contiguous();
  return std::vector<double>(result.data_ptr<double>(), result.data_ptr<double>() + result.numel());
}

}  // namespace video_rnn
