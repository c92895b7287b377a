#include "state.h"

#include <set>

namespace video_rnn {

NamedTensors export_state(torch::nn::Module& module, const std::set<std::string>& skip) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& item : module.named_parameters()) {
    if (skip.count(item.key()) != 0) continue;
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU, torch::kFloat).contiguous().clone());
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> state_shapes(torch::nn::Module& module) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value().sizes().vec());
  return out;
}

void import_state(torch::nn::Module& module, const NamedTensors& tensors, const std::string& prefix,
                  bool require_all) {
  auto parameters = module.named_parameters();
  std::set<std::string> given;
  for (const auto& [name, tensor] : tensors) {
    const std::string full = prefix + name;
    auto* target = parameters.find(full);
    TORCH_CHECK(target != nullptr, "unknown tensor ", full);
    TORCH_CHECK(target->sizes() == tensor.sizes(), "tensor ", full, " has shape ", tensor.sizes(),
                " but the model expects ", target->sizes());
    given.insert(full);
  }
  if (require_all) {
    for (const auto& item : parameters) {
      if (item.key().rfind(prefix, 0) == 0) TORCH_CHECK(given.count(item.key()) != 0, "missing tensor ", item.key());
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors) {
    auto* target = parameters.find(prefix + name);
    target->copy_(tensor.to(target->device(), target->scalar_type()));
  }
}

}  // namespace video_rnn
