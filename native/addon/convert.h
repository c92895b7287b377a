#pragma once
// JavaScript values <-> engine types. Only argument conversion and checks of shape and type here;
// what the values mean is the engine's business.
#include <napi.h>

#include <string>
#include <vector>

#include "engine.h"
#include "tensor_file.h"

namespace video_rnn::addon {

// An Error with a stable `code` property; the TypeScript layer turns it into a VideoRNNError.
Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message);

EngineConfig to_engine_config(const Napi::Object& object);
TrainSettings to_train_settings(const Napi::Object& object);
DistributedConfig to_distributed_config(const Napi::Object& object);
std::vector<double> to_doubles(const Napi::Value& value);

// Clips and named tensors point into JavaScript typed arrays without copying; the caller keeps
// the arrays referenced (`keep_alive`) until the work that reads them is done.
std::vector<ClipInput> to_clips(const Napi::Value& value, std::vector<Napi::ObjectReference>& keep_alive);
std::vector<int64_t> to_labels(const Napi::Value& value, size_t count);
NamedTensors to_named_tensors(const Napi::Value& value, std::vector<Napi::ObjectReference>& keep_alive);
// [{name, shape, dtype, offset, bytes}]: where a file holds each tensor (read by tensor_file.h).
std::vector<TensorRange> to_tensor_ranges(const Napi::Value& value);

// A Float32Array viewing the tensor's memory; the tensor lives until the array is collected.
// Where the runtime refuses external buffers (V8 sandbox), or VIDEO_RNN_COPY_BUFFERS=1 asks for
// it, or the addon is built with NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED, the array holds a copy.
Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor);
bool external_buffers_allowed();
Napi::Array to_js_named_tensors(Napi::Env env, const NamedTensors& tensors);

}  // namespace video_rnn::addon
