#pragma once
// The optimiser's state between runs: per parameter, Adam's moments and step count or SGD's momentum
// buffer, keyed by the parameter's module name (lstm.weight_ih_l0, ...), so that a resumed run goes
// on exactly where the stopped one was. Plus torch's CPU generator, which dropout draws from.
#include <torch/torch.h>

#include <map>
#include <string>

#include "state.h"

namespace video_rnn {

struct OptimizerState {
  NamedTensors tensors;                  // "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.max_exp_avg_sq", "<param>.momentum_buffer"
  std::map<std::string, int64_t> steps;  // Adam's step count per parameter
  torch::Tensor cpu_generator;           // uint8 state of torch's default CPU generator
};

// `parameters` names the optimiser's parameters; the tensors come out as float32 on the CPU.
OptimizerState export_optimizer_state(torch::optim::Optimizer& optimizer, const NamedTensors& parameters);

// Replaces the optimiser's state by `state`; every tensor must name a parameter with its shape.
void import_optimizer_state(torch::optim::Optimizer& optimizer, const NamedTensors& parameters, const OptimizerState& state);

}  // namespace video_rnn
