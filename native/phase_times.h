#pragma once
// Where the native side of a call spends its wall time. An engine activates its own PhaseTimes on
// the calling thread for the length of each call; model code marks phases with a PhaseTimer, which
// does nothing when no PhaseTimes is active (a model used outside an engine). On CUDA, kernels run
// asynchronously and a phase measures launching them, not running them.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace video_rnn {

enum class Phase : int {
  kNormalize,     // uint8 NHWC frames to normalised float
  kConvolutions,  // VGG16 features and average pooling
  kClassifier,    // fc6 and fc7
  kSequence,      // LSTM, head, softmax
  kOptimizer,     // backward, gradient averaging and the optimiser step
  kCall,          // the whole engine call, lock wait excluded
};
constexpr int kPhaseCount = 6;

struct PhaseTotals {
  std::array<int64_t, kPhaseCount> nanoseconds{};
  int64_t calls = 0;
};

class PhaseTimes {
 public:
  void add(Phase phase, int64_t nanoseconds) {
    totals_[static_cast<int>(phase)].fetch_add(nanoseconds, std::memory_order_relaxed);
  }
  void count_call() { calls_.fetch_add(1, std::memory_order_relaxed); }
  PhaseTotals totals() const;

 private:
  std::array<std::atomic<int64_t>, kPhaseCount> totals_{};
  std::atomic<int64_t> calls_{0};
};

// Makes `times` the calling thread's target until the scope ends (restoring the previous one).
class ActivePhaseTimes {
 public:
  explicit ActivePhaseTimes(PhaseTimes* times);
  ~ActivePhaseTimes();
  ActivePhaseTimes(const ActivePhaseTimes&) = delete;
  ActivePhaseTimes& operator=(const ActivePhaseTimes&) = delete;

 private:
  PhaseTimes* previous_;
};

// Adds the scope's wall time to one phase of the thread's active PhaseTimes, if there is one.
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase);
  ~PhaseTimer();
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Phase phase_;
  PhaseTimes* target_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace video_rnn
