#include "memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace video_rnn {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLargeBytes = size_t{4} << 20;
// LibTorch's CPU tensors are 64-byte aligned; the header takes one such slot before the data.
constexpr size_t kHeaderBytes = 64;
constexpr uint64_t kMapped = 0x6d61707065645f31;  // how the block was obtained, checked on release
constexpr uint64_t kHeap = 0x686561705f626c31;

struct Header {
  void* base;
  size_t length;
  uint64_t kind;
};
static_assert(sizeof(Header) <= kHeaderBytes, "the header fits in front of the data");

void release(void* data) {
  if (data == nullptr) return;
  const auto* header = reinterpret_cast<const Header*>(static_cast<char*>(data) - kHeaderBytes);
  if (header->kind == kMapped) {
    munmap(header->base, header->length);
  } else {
    TORCH_INTERNAL_ASSERT(header->kind == kHeap, "memory released by video-rnn's allocator was not allocated by it");
    std::free(header->base);
  }
}

void* with_header(void* base, size_t length, uint64_t kind) {
  auto* header = static_cast<Header*>(base);
  *header = Header{base, length, kind};
  return static_cast<char*>(base) + kHeaderBytes;
}

// A mapping starting on a huge-page boundary (one page over-allocated, then trimmed), advised huge.
void* mapped(size_t bytes) {
  const size_t length = (bytes + kHeaderBytes + kHugePage - 1) / kHugePage * kHugePage;
  void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TORCH_CHECK(raw != MAP_FAILED, "cannot map ", length, " bytes for a tensor: ", std::strerror(errno));
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + length + kHugePage;
  if (end > aligned + length) munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  void* base = reinterpret_cast<void*>(aligned);
  // Advice only: where huge pages are off, the mapping works in 4 KiB pages.
  madvise(base, length, MADV_HUGEPAGE);
  return with_header(base, length, kMapped);
}

void* heap(size_t bytes) {
  void* base = nullptr;
  TORCH_CHECK(posix_memalign(&base, kHeaderBytes, bytes + kHeaderBytes) == 0 && base != nullptr,
              "cannot allocate ", bytes, " bytes for a tensor");
  return with_header(base, bytes + kHeaderBytes, kHeap);
}

c10::DataPtr allocate_block(size_t bytes) {
  void* data = bytes == 0 ? nullptr : bytes >= kLargeBytes ? mapped(bytes) : heap(bytes);
  return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
}

// Both signatures of allocate and a copy_data, without `override`: LibTorch 1.13 declares
// allocate const, 2.x does not and adds copy_data; each version overrides what it declares.
class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const { return allocate_block(bytes); }
  c10::DataPtr allocate(size_t bytes) { return allocate_block(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* target, const void* source, std::size_t bytes) const { std::memcpy(target, source, bytes); }
};

}  // namespace

bool use_huge_page_allocator() {
  static std::once_flag once;
  // Never destroyed: tensors may be freed during the process's exit.
  static auto* allocator = new HugePageAllocator();
  std::call_once(once, [] { c10::SetCPUAllocator(allocator, /*priority=*/1); });
  return c10::GetCPUAllocator() == allocator;
}
#else
bool use_huge_page_allocator() { return false; }
#endif

void return_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace video_rnn
