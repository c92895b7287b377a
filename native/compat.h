#pragma once
// The one place that knows which LibTorch the addon is built against: 1.13 (Debian 12) through
// current 2.x. Everything else calls these helpers and never tests a version itself.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#define VIDEO_RNN_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if VIDEO_RNN_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace video_rnn::compat {

// What ProcessGroupGloo and ProcessGroupNCCL derive from: c10d::ProcessGroup until 1.13,
// c10d::Backend since 2.0 (ProcessGroup became a dispatcher over backends).
#if VIDEO_RNN_TORCH_AT_LEAST(2, 0)
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

// Turns CPU or CUDA autocast on or off for the calling thread. 2.4 replaced the per-device
// functions (set_enabled, set_cpu_enabled, set_autocast_*_dtype) by ones taking a device type.
inline void set_autocast(c10::DeviceType device, bool enabled, at::ScalarType dtype) {
#if VIDEO_RNN_TORCH_AT_LEAST(2, 4)
  if (enabled) at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    if (enabled) at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline bool autocast_enabled(c10::DeviceType device) {
#if VIDEO_RNN_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline at::ScalarType autocast_dtype(c10::DeviceType device) {
#if VIDEO_RNN_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

// A TCPStore. 2.4 made the libuv server loop the default (useLibUV = true), but a LibTorch built
// without libuv (Debian 13's) refuses it at run time, and 2.6 does not export the function that
// would tell in advance. So: libuv where the build has it (PyTorch's USE_LIBUV=0 turns it off, as in
// Python), the classic loop where it has not. Before 2.4 there is one loop and nothing to choose.
inline c10::intrusive_ptr<c10d::TCPStore> make_tcp_store(const std::string& host, c10d::TCPStoreOptions options) {
#if VIDEO_RNN_TORCH_AT_LEAST(2, 4)
  const char* setting = std::getenv("USE_LIBUV");
  options.useLibUV = setting == nullptr || std::string(setting) != "0";
  if (options.useLibUV) {
    try {
      return c10::make_intrusive<c10d::TCPStore>(host, options);
    } catch (const c10::Error& error) {
      // Only the build's refusal falls back; a network failure is the caller's to report.
      if (std::string(error.what_without_backtrace()).find("libuv") == std::string::npos) throw;
    }
    options.useLibUV = false;
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

// The key of a parameter in Optimizer::state(): its TensorImpl's address, printed as a string up to
// 2.0 (what c10::guts::to_string wrote), the address itself since the map became keyed by void*.
// Read from the map's own key type, so both layouts compile.
using OptimizerStateMap = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

template <typename Key = typename OptimizerStateMap::key_type>
Key optimizer_state_key(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

}  // namespace video_rnn::compat
