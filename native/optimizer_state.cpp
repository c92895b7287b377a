#include "optimizer_state.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <set>

#include "compat.h"

namespace video_rnn {
namespace {

torch::Tensor to_cpu_float(const torch::Tensor& tensor) {
  return tensor.detach().to(torch::kCPU, torch::kFloat).contiguous().clone();
}

const torch::Tensor* find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [key, tensor] : tensors) {
    if (key == name) return &tensor;
  }
  return nullptr;
}

}  // namespace

OptimizerState export_optimizer_state(torch::optim::Optimizer& optimizer, const NamedTensors& parameters) {
  OptimizerState out;
  auto& states = optimizer.state();
  for (const auto& [name, parameter] : parameters) {
    auto found = states.find(compat::optimizer_state_key(parameter));
    if (found == states.end()) continue;  // never stepped (a frozen or unused parameter)
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(found->second.get())) {
      out.steps[name] = adam->step();
      out.tensors.emplace_back(name + ".exp_avg", to_cpu_float(adam->exp_avg()));
      out.tensors.emplace_back(name + ".exp_avg_sq", to_cpu_float(adam->exp_avg_sq()));
      if (adam->max_exp_avg_sq().defined()) out.tensors.emplace_back(name + ".max_exp_avg_sq", to_cpu_float(adam->max_exp_avg_sq()));
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(found->second.get())) {
      if (sgd->momentum_buffer().defined()) out.tensors.emplace_back(name + ".momentum_buffer", to_cpu_float(sgd->momentum_buffer()));
    }
  }
  out.cpu_generator = at::detail::getDefaultCPUGenerator().get_state();
  return out;
}

void import_optimizer_state(torch::optim::Optimizer& optimizer, const NamedTensors& parameters, const OptimizerState& state) {
  torch::NoGradGuard no_grad;
  const bool adam = dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr;
  std::set<std::string> used;
  auto take = [&](const std::string& name, const torch::Tensor& parameter) -> torch::Tensor {
    const auto* tensor = find(state.tensors, name);
    if (tensor == nullptr) return {};
    TORCH_CHECK(tensor->sizes() == parameter.sizes(), "optimizer state ", name, " has shape ", tensor->sizes(),
                " but the parameter has ", parameter.sizes());
    used.insert(name);
    return tensor->to(parameter.device(), parameter.scalar_type()).clone();
  };
  auto& states = optimizer.state();
  states.clear();
  for (const auto& [name, parameter] : parameters) {
    if (adam) {
      auto exp_avg = take(name + ".exp_avg", parameter);
      auto exp_avg_sq = take(name + ".exp_avg_sq", parameter);
      auto max_exp_avg_sq = take(name + ".max_exp_avg_sq", parameter);
      const auto step = state.steps.find(name);
      if (!exp_avg.defined() && step == state.steps.end()) continue;
      TORCH_CHECK(exp_avg.defined() && exp_avg_sq.defined() && step != state.steps.end(),
                  "the Adam state of ", name, " is incomplete (it needs exp_avg, exp_avg_sq and a step count)");
      auto entry = std::make_unique<torch::optim::AdamParamState>();
      entry->step(step->second);
      entry->exp_avg(exp_avg);
      entry->exp_avg_sq(exp_avg_sq);
      if (max_exp_avg_sq.defined()) entry->max_exp_avg_sq(max_exp_avg_sq);
      states[compat::optimizer_state_key(parameter)] = std::move(entry);
    } else {
      auto buffer = take(name + ".momentum_buffer", parameter);
      if (!buffer.defined()) continue;
      auto entry = std::make_unique<torch::optim::SGDParamState>();
      entry->momentum_buffer(buffer);
      states[compat::optimizer_state_key(parameter)] = std::move(entry);
    }
  }
  for (const auto& [name, tensor] : state.tensors) {
    TORCH_CHECK(used.count(name) == 1, "optimizer state ", name, " belongs to no parameter of this model and optimizer");
  }
  if (state.cpu_generator.defined()) {
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle on the process-wide generator
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state.cpu_generator.to(torch::kUInt8));
  }
}

}  // namespace video_rnn
