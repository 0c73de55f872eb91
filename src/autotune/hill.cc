// The hill-climbing baseline, online (internal/hill.h).
#include "autotune/internal/hill.h"

#include <algorithm>

#include <fmt/format.h>

#include "sluice/common/figures.h"

namespace sluice::autotune::internal {

namespace {
constexpr double kMinGain = 0.03;  // the best candidate is kept only when it gains this much
constexpr int64_t kMaxPrefetch = 8;
}  // namespace

HillClimber::HillClimber(const trace::PipelineTrace& p, double cores) {
  const auto most_workers = std::max<int64_t>(1, static_cast<int64_t>(cores));
  for (const trace::StageTrace& s : p.stages) {
    if (s.parallelizable) knobs_.push_back({s.name, "parallelism", s.parallelism, most_workers});
  }
  if (!p.stages.empty()) {
    const trace::StageTrace& last = p.stages.back();
    knobs_.push_back({last.name, "buffer_size", last.buffer_size, kMaxPrefetch});
  }
}

HillClimber::Step HillClimber::Trial(size_t i, std::vector<pipeline::KnobChange> changes) {
  trying_ = static_cast<int>(i);
  const Knob& k = knobs_[i];
  changes.push_back({k.stage, k.knob, k.value + 1});
  return {std::move(changes), "trial",
          fmt::format("hill-climbing: try {}.{} {}->{} (one candidate per window)", k.stage, k.knob,
                      k.value, k.value + 1)};
}

HillClimber::Step HillClimber::StartRound() {
  results_.assign(knobs_.size(), -1);
  for (size_t i = 0; i < knobs_.size(); ++i) {
    if (knobs_[i].value < knobs_[i].cap) return Trial(i, {});
  }
  done_ = true;
  return {};
}

HillClimber::Step HillClimber::OnWindow(double rate) {
  if (done_) return {};
  if (trying_ < 0) {  // the kept knobs were just measured
    base_ = rate;
    return StartRound();
  }
  const auto tried = static_cast<size_t>(trying_);
  results_[tried] = rate;
  // Undo this candidate, and try the next one in the same change.
  std::vector<pipeline::KnobChange> undo = {
      {knobs_[tried].stage, knobs_[tried].knob, knobs_[tried].value}};
  for (size_t i = tried + 1; i < knobs_.size(); ++i) {
    if (knobs_[i].value < knobs_[i].cap) return Trial(i, std::move(undo));
  }
  trying_ = -1;
  const auto best =
      static_cast<size_t>(std::max_element(results_.begin(), results_.end()) - results_.begin());
  if (results_[best] < base_ * (1 + kMinGain)) {
    done_ = true;
    return {std::move(undo), "trial",
            fmt::format("hill-climbing: no candidate gained {}% over {} outputs/s; it stops",
                        Num(100 * kMinGain), Num(base_))};
  }
  Knob& k = knobs_[best];
  ++k.value;
  std::vector<pipeline::KnobChange> changes = std::move(undo);
  changes.push_back({k.stage, k.knob, k.value});
  return {std::move(changes), "apply",
          fmt::format("hill-climbing: {}.{} {}->{} measured {} outputs/s, the best of the round "
                      "(from {})",
                      k.stage, k.knob, k.value - 1, k.value, Num(results_[best]), Num(base_))};
}

}  // namespace sluice::autotune::internal
