#include "phase_times.h"

namespace video_rnn {
namespace {
thread_local PhaseTimes* active_times = nullptr;
}  // namespace

PhaseTotals PhaseTimes::totals() const {
  PhaseTotals out;
  for (int i = 0; i < kPhaseCount; ++i) out.nanoseconds[i] = totals_[i].load(std::memory_order_relaxed);
  out.calls = calls_.load(std::memory_order_relaxed);
  return out;
}

ActivePhaseTimes::ActivePhaseTimes(PhaseTimes* times) : previous_(active_times) { active_times = times; }

ActivePhaseTimes::~ActivePhaseTimes() { active_times = previous_; }

PhaseTimer::PhaseTimer(Phase phase)
    : phase_(phase), target_(active_times),
      started_(target_ != nullptr ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}

PhaseTimer::~PhaseTimer() {
  if (target_ == nullptr) return;
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  target_->add(phase_, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

}  // namespace video_rnn
