#include "distributed.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VIDEO_RNN_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef VIDEO_RNN_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace video_rnn {
namespace {

// The address this machine would send from to reach host:port: the kernel's route choice, read
// from a connected UDP socket (connecting a datagram socket sends nothing).
std::string route_source_address(const std::string& host, int64_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  TORCH_CHECK(status == 0, "cannot resolve the master address ", host, ":", port, ": ", gai_strerror(status));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  std::string failure = "no address";
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    const int fd = socket(entry->ai_family, SOCK_DGRAM, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    char text[INET6_ADDRSTRLEN] = {0};
    const bool ok = connect(fd, entry->ai_addr, entry->ai_addrlen) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0;
    if (!ok) failure = std::strerror(errno);
    close(fd);
    if (!ok) continue;
    const void* raw = local.ss_family == AF_INET6
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
    if (inet_ntop(local.ss_family, raw, text, sizeof(text)) != nullptr) return text;
  }
  TORCH_CHECK(false, "no route from this machine to the master ", host, ":", port, " (", failure, ")");
}

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1";
}

std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> names;
  std::stringstream stream(list);
  for (std::string name; std::getline(stream, name, ',');) {
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

#ifdef VIDEO_RNN_WITH_GLOO
// One Gloo device per named interface, as PyTorch does with GLOO_SOCKET_IFNAME; otherwise `local`,
// the address that routes to the master, which is an address of this rank's own machine.
c10::intrusive_ptr<compat::CollectiveGroup> make_gloo(const c10::intrusive_ptr<c10d::Store>& store,
                                                      const DistributedConfig& config, const std::string& local) {
  auto options = c10d::ProcessGroupGloo::Options::create(config.timeout);
  for (const auto& name : split_names(config.interfaces)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  }
  if (options->devices.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(config.rank),
                                                     static_cast<int>(config.world_size), options);
}
#endif

}  // namespace

DataParallel::DataParallel(const DistributedConfig& config) : config_(config), device_(config.device) {
  TORCH_CHECK(config.world_size >= 1, "worldSize must be at least 1");
  TORCH_CHECK(config.rank >= 0 && config.rank < config.world_size, "rank ", config.rank, " is outside 0..", config.world_size - 1);
  TORCH_CHECK(config.master_port > 0 && config.master_port < 65536, "masterPort must be between 1 and 65535");
  TORCH_CHECK(config.backend == "gloo" || config.backend == "nccl", "unknown backend ", config.backend, "; expected 'gloo' or 'nccl'");
  TORCH_CHECK(config.backend != "nccl" || device_.is_cuda(), "backend 'nccl' needs a model on a CUDA device, not ", device_.str());
#ifndef VIDEO_RNN_WITH_GLOO
  // Gloo carries CPU training and, beside NCCL, the control messages.
  TORCH_CHECK(false, "video-rnn was built without Gloo's headers; install libgloo-dev and rebuild");
#endif
#ifndef VIDEO_RNN_WITH_NCCL
  TORCH_CHECK(config.backend != "nccl", "this LibTorch build has no NCCL; use backend 'gloo'");
#endif
  // Before the rendezvous, which would otherwise wait for machines that can never join.
  std::string local;
  if (split_names(config.interfaces).empty()) {
    local = route_source_address(config.master_addr, config.master_port);
    TORCH_CHECK(!(config.multi_node && is_loopback(local)),
                "Gloo would listen on the loopback address ", local, ", the route to the master ", config.master_addr,
                ":", config.master_port, ", which the other machines cannot reach: give every machine node 0's network "
                "address as --master-addr, or name the interface with --iface (GLOO_SOCKET_IFNAME)");
  }
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(config.master_port);
  store_options.isServer = config.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(config.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = config.timeout;
  store_ = compat::make_tcp_store(config.master_addr, store_options);
#ifdef VIDEO_RNN_WITH_GLOO
  // Separate key spaces, so the two groups' rendezvous keys never meet.
  control_ = make_gloo(c10::make_intrusive<c10d::PrefixStore>("control", store_), config, local);
  group_ = control_;
#endif
#ifdef VIDEO_RNN_WITH_NCCL
  if (config.backend == "nccl") {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = config.timeout;
    group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store_),
                                                         static_cast<int>(config.rank), static_cast<int>(config.world_size), options);
  }
#endif
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
  control_->allreduce(tensors)->wait(config_.timeout);
  auto result = tensors.front().contiguous();
  return std::vector<double>(result.data_ptr<double>(), result.data_ptr<double>() + result.numel());
}

}  // namespace video_rnn
