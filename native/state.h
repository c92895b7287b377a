#pragma once
// Named tensors in and out of a module, by the module's own parameter names
// (embedding.features.0.weight, lstm.weight_ih_l0_reverse, classifier.2.bias, ...).
#include <torch/torch.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace video_rnn {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Float32 CPU copies of every parameter but those named in `skip`, detached from the live model (a small
// checkpoint leaves the frozen backbone out, without copying it).
NamedTensors export_state(torch::nn::Module& module, const std::set<std::string>& skip = {});

// (name, shape) of every parameter, without copying anything.
std::vector<std::pair<std::string, std::vector<int64_t>>> state_shapes(torch::nn::Module& module);

// Copies each named tensor into the parameter `prefix + name`. Unknown names and shape mismatches
// are refused before anything is written, so a failed load leaves the model as it was. With
// `require_all`, every parameter under `prefix` must be given.
void import_state(torch::nn::Module& module, const NamedTensors& tensors, const std::string& prefix,
                  bool require_all);

}  // namespace video_rnn
