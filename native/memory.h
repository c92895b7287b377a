#pragma once
// How the model's memory sits in the process (Linux; elsewhere these do nothing).
//
// Every child process Node.js starts (each ffmpeg decode) is a fork() of this process that copies
// its page tables before exec, on the JavaScript thread. With VGG16's 537 MB of weights and a
// forward pass's activations in 4 KiB pages, that copy blocked the event loop for 100 to 400 ms
// per spawn. In 2 MiB pages it has 512 times fewer entries to copy; the GEMMs also touch fewer TLB
// entries.
#include <cstddef>

namespace video_rnn {

// Makes LibTorch's CPU allocator put every allocation of 4 MiB or more (weights, activations) in its
// own mapping backed by transparent huge pages, returned to the system when the tensor is freed;
// smaller ones go to malloc as before. Process-wide and permanent: the first call installs it, later
// calls do nothing. Returns whether it is installed.
bool use_huge_page_allocator();

// Gives the allocator's free memory back to the system (glibc's malloc_trim): a forward pass frees
// activations that glibc keeps mapped for reuse, each page of them another entry for the next
// fork() to copy. Refaulting them on the next call costs far less.
void return_free_memory();

}  // namespace video_rnn
