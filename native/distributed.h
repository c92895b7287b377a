#pragma once
// Data-parallel training on PyTorch's own c10d: a TCPStore rendezvous and a Gloo (CPU) or NCCL
// (CUDA) process group. Rank 0 broadcasts the initial parameters; gradients are averaged with
// bucketed allreduces after backward, as DistributedDataParallel does.
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "compat.h"

namespace video_rnn {

struct DistributedConfig {
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  std::string backend = "gloo";  // "gloo" or "nccl"
  // Gloo's network interfaces by name (GLOO_SOCKET_IFNAME's comma-separated list); empty: the
  // interface of the local address that routes to the master.
  std::string interfaces;
  // Ranks run on more than one machine: a loopback address for Gloo is then an error.
  bool multi_node = false;
  // Where this rank's tensors live; NCCL's collectives run on this CUDA device.
  std::string device = "cpu";
  std::chrono::milliseconds timeout{60000};
  int64_t bucket_bytes = 25 * 1024 * 1024;  // DDP's default bucket size
};

class DataParallel {
 public:
  // Blocks until every rank has joined the rendezvous, or throws after the timeout.
  explicit DataParallel(const DistributedConfig& config);
  ~DataParallel();

  int64_t rank() const { return config_.rank; }
  int64_t world_size() const { return config_.world_size; }

  // Rank 0's values overwrite everyone's.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Replaces each parameter's gradient by the mean over ranks (missing gradients count as zero).
  void average_gradients(std::vector<torch::Tensor> parameters);
  // Elementwise sums over ranks, in float64.
  std::vector<double> sum(const std::vector<double>& values);

 private:
  void allreduce_bucket(std::vector<torch::Tensor>& tensors);

  DistributedConfig config_;
  torch::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  // Gradients and parameters: Gloo on the CPU, NCCL on CUDA.
  c10::intrusive_ptr<compat::CollectiveGroup> group_;
  // Per-step agreements on CPU doubles (loss finite, abort, epoch sums): group_ itself under Gloo,
  // a Gloo side group under NCCL, which only takes CUDA tensors.
  c10::intrusive_ptr<compat::CollectiveGroup> control_;
};

}  // namespace video_rnn
