#include "tensor_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace video_rnn {
namespace {

class File {
 public:
  File(int fd, const std::string& label) : label_(label), fd_(fd) {}

  void read(char* target, int64_t bytes, int64_t offset, const std::string& what) {
    int64_t done = 0;
    while (done < bytes) {
      const ssize_t got = ::pread(fd_, target + done, static_cast<size_t>(bytes - done), static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("could not be read at " + what + ": " + std::strerror(errno));
      if (got == 0) fail("ended early while reading " + what + ": was it changed while being read?");
      done += got;
    }
  }

  [[noreturn]] void fail(const std::string& why) const { throw std::runtime_error(label_ + " " + why); }

 private:
  const std::string& label_;
  int fd_;
};

}  // namespace

NamedTensors read_tensor_ranges(int fd, const std::string& label, const std::vector<TensorRange>& ranges) {
  File file(fd, label);
  NamedTensors out;
  out.reserve(ranges.size());
  for (const auto& range : ranges) {
    auto tensor = torch::empty(range.shape, torch::TensorOptions().dtype(range.dtype));
    const int64_t expected = tensor.numel() * static_cast<int64_t>(tensor.element_size());
    if (range.offset < 0 || range.bytes != expected) {
      file.fail("has tensor " + range.name + " with " + std::to_string(range.bytes) + " bytes at offset " +
                std::to_string(range.offset) + ", where its shape needs " + std::to_string(expected));
    }
    file.read(static_cast<char*>(tensor.data_ptr()), range.bytes, range.offset, "tensor " + range.name);
    out.emplace_back(range.name, std::move(tensor));
  }
  return out;
}

}  // namespace video_rnn
