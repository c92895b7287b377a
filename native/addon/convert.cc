#include "convert.h"

#include <cstdlib>
#include <cstring>
#include <memory>

namespace video_rnn::addon {
namespace {

int64_t integer_field(const Napi::Object& object, const char* name, int64_t fallback, int64_t min, int64_t max) {
  auto value = object.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw coded_error(object.Env(), "E_INVALID_ARGUMENT", std::string(name) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number != static_cast<double>(static_cast<int64_t>(number)) || number < static_cast<double>(min) ||
      number > static_cast<double>(max)) {
    throw coded_error(object.Env(), "E_INVALID_ARGUMENT",
                      std::string(name) + " must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return static_cast<int64_t>(number);
}

double number_field(const Napi::Object& object, const char* name, double fallback) {
  auto value = object.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw coded_error(object.Env(), "E_INVALID_ARGUMENT", std::string(name) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

std::string string_field(const Napi::Object& object, const char* name, const std::string& fallback) {
  auto value = object.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsString()) throw coded_error(object.Env(), "E_INVALID_ARGUMENT", std::string(name) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

bool bool_field(const Napi::Object& object, const char* name, bool fallback) {
  auto value = object.Get(name);
  return value.IsUndefined() ? fallback : value.ToBoolean().Value();
}

Napi::Object require_object(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", what + " must be an object");
  return value.As<Napi::Object>();
}

Napi::Array require_array(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", what + " must be an array");
  return value.As<Napi::Array>();
}

constexpr int64_t kMaxDimension = int64_t{1} << 31;

std::vector<int64_t> to_shape(const Napi::Value& value, const std::string& name) {
  auto array = require_array(value, "tensor " + name + " shape");
  std::vector<int64_t> shape;
  for (uint32_t d = 0; d < array.Length(); ++d) {
    auto dim = array.Get(d);
    if (!dim.IsNumber() || dim.As<Napi::Number>().DoubleValue() < 0) {
      throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "tensor " + name + " has a bad shape");
    }
    shape.push_back(dim.As<Napi::Number>().Int64Value());
  }
  return shape;
}

// safetensors dtype names (src/weights/dtype.ts) that LibTorch holds as they are stored.
torch::ScalarType to_scalar_type(const Napi::Env& env, const std::string& dtype, const std::string& name) {
  static const std::vector<std::pair<std::string, torch::ScalarType>> known = {
      {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
      {"I64", torch::kLong},   {"I32", torch::kInt},   {"I16", torch::kShort}, {"I8", torch::kChar},
      {"U8", torch::kByte},    {"BOOL", torch::kBool}};
  for (const auto& [label, type] : known) {
    if (label == dtype) return type;
  }
  throw coded_error(env, "E_INVALID_ARGUMENT", "tensor " + name + " has dtype " + dtype + ", which is not read natively");
}

}  // namespace

Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  auto error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

EngineConfig to_engine_config(const Napi::Object& object) {
  EngineConfig config;
  config.model.classes = integer_field(object, "classes", 2, 2, 1 << 20);
  config.model.hidden_size = integer_field(object, "hiddenSize", config.model.hidden_size, 1, 1 << 16);
  config.model.num_layers = integer_field(object, "numLayers", config.model.num_layers, 1, 64);
  config.model.bidirectional = bool_field(object, "bidirectional", config.model.bidirectional);
  config.model.head_size = integer_field(object, "headSize", config.model.head_size, 1, 1 << 16);
  config.model.dropout = number_field(object, "dropout", config.model.dropout);
  config.device = string_field(object, "device", config.device);
  config.precision = string_field(object, "precision", config.precision);
  config.seed = integer_field(object, "seed", config.seed, -1, int64_t{1} << 52);
  config.threads = integer_field(object, "threads", config.threads, 0, 1024);
  config.chunk_frames = integer_field(object, "chunkFrames", config.chunk_frames, 1, 1 << 16);
  config.cache_bytes = integer_field(object, "cacheBytes", config.cache_bytes, 0, int64_t{1} << 50);
  config.channels_last = bool_field(object, "channelsLast", config.channels_last);
  config.huge_pages = bool_field(object, "hugePages", config.huge_pages);
  config.prepacked_convolutions = bool_field(object, "prepackedConvolutions", config.prepacked_convolutions);
  config.bf16_prepacked_convolutions = bool_field(object, "bf16PrepackedConvolutions", config.bf16_prepacked_convolutions);
  config.winograd_convolutions = bool_field(object, "winogradConvolutions", config.winograd_convolutions);
  config.pooled_fc6 = bool_field(object, "pooledFc6", config.pooled_fc6);
  const std::string kernel = string_field(object, "winogradKernel", "auto");
  if (!winograd_kernel_from_name(kernel, &config.winograd_kernel)) {
    throw coded_error(object.Env(), "E_INVALID_ARGUMENT", "winogradKernel must be auto, baseline, avx2 or avx512, got " + kernel);
  }
  // A kernel forced for this CPU fails here, at the model's creation, not at its first forward.
  if (!winograd_kernel_available(config.winograd_kernel)) {
    throw coded_error(object.Env(), "E_INVALID_ARGUMENT", std::string("winogradKernel=") + kernel +
        ": this CPU lacks the instructions it needs (avx512: AVX-512F; avx2: AVX2 and FMA)");
  }
  return config;
}

TrainSettings to_train_settings(const Napi::Object& object) {
  TrainSettings settings;
  settings.optimizer = string_field(object, "optimizer", settings.optimizer);
  settings.learning_rate = number_field(object, "learningRate", settings.learning_rate);
  settings.backbone_learning_rate = number_field(object, "backboneLearningRate", settings.backbone_learning_rate);
  settings.weight_decay = number_field(object, "weightDecay", settings.weight_decay);
  settings.momentum = number_field(object, "momentum", settings.momentum);
  settings.trainable_backbone_layers = integer_field(object, "trainableBackboneLayers", 0, 0, kMaxTrainableBackboneLayers);
  return settings;
}

DistributedConfig to_distributed_config(const Napi::Object& object) {
  DistributedConfig config;
  config.world_size = integer_field(object, "worldSize", 1, 1, 1 << 20);
  config.rank = integer_field(object, "rank", 0, 0, config.world_size - 1);
  config.master_addr = string_field(object, "masterAddr", config.master_addr);
  config.master_port = integer_field(object, "masterPort", config.master_port, 1, 65535);
  config.backend = string_field(object, "backend", config.backend);
  config.interfaces = string_field(object, "iface", config.interfaces);
  config.multi_node = object.Has("multiNode") && object.Get("multiNode").ToBoolean().Value();
  config.timeout = std::chrono::milliseconds(integer_field(object, "timeoutMs", config.timeout.count(), 1, int64_t{1} << 40));
  return config;
}

std::vector<double> to_doubles(const Napi::Value& value) {
  auto array = require_array(value, "values");
  std::vector<double> values;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto item = array.Get(i);
    if (!item.IsNumber()) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "values must be numbers");
    values.push_back(item.As<Napi::Number>().DoubleValue());
  }
  return values;
}

std::vector<ClipInput> to_clips(const Napi::Value& value, std::vector<Napi::ObjectReference>& keep_alive) {
  auto array = require_array(value, "clips");
  if (array.Length() == 0) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "a batch needs at least one clip");
  std::vector<ClipInput> clips;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto object = require_object(array.Get(i), "clip " + std::to_string(i));
    ClipInput clip;
    clip.cache_key = string_field(object, "cacheKey", "");
    clip.store = bool_field(object, "store", false);
    auto embeddings = object.Get("embeddings");
    if (!embeddings.IsUndefined()) {
      if (!embeddings.IsTypedArray() || embeddings.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "clip " + std::to_string(i) + " embeddings must be a Float32Array");
      }
      auto floats = embeddings.As<Napi::Float32Array>();
      const int64_t frames = integer_field(object, "frames", 0, 1, kMaxDimension);
      const double expected = static_cast<double>(frames) * static_cast<double>(kEmbeddingSize);
      if (expected != static_cast<double>(floats.ElementLength())) {
        throw coded_error(value.Env(), "E_INVALID_ARGUMENT",
                          "clip " + std::to_string(i) + " has " + std::to_string(floats.ElementLength()) +
                          " embedding values but frames x " + std::to_string(kEmbeddingSize) + " is " +
                          std::to_string(static_cast<int64_t>(expected)));
      }
      clip.embeddings = torch::from_blob(floats.Data(), {frames, kEmbeddingSize}, torch::kFloat);
      keep_alive.push_back(Napi::Persistent(floats.As<Napi::Object>()));
      clips.push_back(std::move(clip));
      continue;
    }
    auto data = object.Get("data");
    if (data.IsUndefined() && !clip.cache_key.empty()) {
      clips.push_back(std::move(clip));
      continue;
    }
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "clip " + std::to_string(i) + " data must be a Uint8Array");
    }
    auto bytes = data.As<Napi::Uint8Array>();
    const int64_t frames = integer_field(object, "frames", 0, 1, kMaxDimension);
    const int64_t height = integer_field(object, "height", 0, 1, kMaxDimension);
    const int64_t width = integer_field(object, "width", 0, 1, kMaxDimension);
    const double expected = static_cast<double>(frames) * static_cast<double>(height) * static_cast<double>(width) * 3.0;
    if (expected != static_cast<double>(bytes.ByteLength())) {
      throw coded_error(value.Env(), "E_INVALID_ARGUMENT",
                        "clip " + std::to_string(i) + " has " + std::to_string(bytes.ByteLength()) +
                        " bytes but frames x height x width x 3 is " + std::to_string(static_cast<int64_t>(expected)));
    }
    clip.frames = torch::from_blob(bytes.Data(), {frames, height, width, 3}, torch::kUInt8);
    keep_alive.push_back(Napi::Persistent(bytes.As<Napi::Object>()));
    clips.push_back(std::move(clip));
  }
  return clips;
}

std::vector<int64_t> to_labels(const Napi::Value& value, size_t count) {
  auto array = require_array(value, "labels");
  if (array.Length() != count) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "one label per clip is needed");
  std::vector<int64_t> labels;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto label = array.Get(i);
    if (!label.IsNumber()) throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "labels must be numbers");
    labels.push_back(label.As<Napi::Number>().Int64Value());
  }
  return labels;
}

NamedTensors to_named_tensors(const Napi::Value& value, std::vector<Napi::ObjectReference>& keep_alive) {
  auto array = require_array(value, "tensors");
  NamedTensors tensors;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto object = require_object(array.Get(i), "tensor " + std::to_string(i));
    const std::string name = string_field(object, "name", "");
    auto data = object.Get("data");
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "tensor " + name + " data must be a Float32Array");
    }
    auto floats = data.As<Napi::Float32Array>();
    const auto shape = to_shape(object.Get("shape"), name);
    double numel = 1;
    for (auto size : shape) numel *= static_cast<double>(size);
    if (numel != static_cast<double>(floats.ElementLength())) {
      throw coded_error(value.Env(), "E_INVALID_ARGUMENT", "tensor " + name + " data does not match its shape");
    }
    tensors.emplace_back(name, torch::from_blob(floats.Data(), shape, torch::kFloat));
    keep_alive.push_back(Napi::Persistent(floats.As<Napi::Object>()));
  }
  return tensors;
}

std::vector<TensorRange> to_tensor_ranges(const Napi::Value& value) {
  auto array = require_array(value, "tensor ranges");
  std::vector<TensorRange> ranges;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto object = require_object(array.Get(i), "tensor range " + std::to_string(i));
    TensorRange range;
    range.name = string_field(object, "name", "");
    range.shape = to_shape(object.Get("shape"), range.name);
    range.dtype = to_scalar_type(value.Env(), string_field(object, "dtype", "F32"), range.name);
    range.offset = integer_field(object, "offset", -1, 0, int64_t{1} << 53);
    range.bytes = integer_field(object, "bytes", -1, 0, int64_t{1} << 53);
    ranges.push_back(std::move(range));
  }
  return ranges;
}

bool external_buffers_allowed() {
#ifdef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  return false;
#else
  static const bool allowed = [] {
    const char* copy = std::getenv("VIDEO_RNN_COPY_BUFFERS");
    return copy == nullptr || std::string(copy) != "1";
  }();
  return allowed;
#endif
}

Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor) {
  auto owned = std::make_unique<torch::Tensor>(tensor.to(torch::kCPU, torch::kFloat).contiguous());
  const size_t length = static_cast<size_t>(owned->numel());
  const size_t bytes = length * sizeof(float);
  napi_value value = nullptr;
  // Runtimes with V8's memory sandbox (recent Electron) refuse ArrayBuffers over memory they did
  // not allocate and answer napi_no_external_buffers_allowed: copy into one of their own there.
  napi_status status = napi_no_external_buffers_allowed;
#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  if (external_buffers_allowed()) {
    status = napi_create_external_arraybuffer(
        env, owned->data_ptr(), bytes,
        [](napi_env, void*, void* hint) { delete static_cast<torch::Tensor*>(hint); }, owned.get(), &value);
  }
#endif
  if (status == napi_ok) {
    owned.release();  // the finaliser deletes it when the ArrayBuffer is collected
    return Napi::Float32Array::New(env, length, Napi::ArrayBuffer(env, value), 0);
  }
  if (status != napi_no_external_buffers_allowed) NAPI_THROW_IF_FAILED(env, status, Napi::Float32Array());
  auto copy = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(copy.Data(), owned->data_ptr(), bytes);
  return Napi::Float32Array::New(env, length, copy, 0);
}

Napi::Array to_js_named_tensors(Napi::Env env, const NamedTensors& tensors) {
  auto array = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    auto object = Napi::Object::New(env);
    object.Set("name", name);
    auto shape = Napi::Array::New(env, tensor.dim());
    for (int64_t d = 0; d < tensor.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(tensor.size(d))));
    object.Set("shape", shape);
    object.Set("data", to_float32_array(env, tensor));
    array.Set(static_cast<uint32_t>(i), object);
  }
  return array;
}

}  // namespace video_rnn::addon
