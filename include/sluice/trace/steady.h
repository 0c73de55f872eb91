// The warm-up / steady-window finder shared by the tracer (which cuts the warm-up it writes) and
// the analyzer (which cuts it for pipelines the tracer did not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace sluice::trace {

// How FindSteadyStart decides, in words, for the trace's warm-up method and the report.
inline constexpr const char* kSteadyStartRule =
    "first sample from which the output rate over 5 samples is within 20% of the median rate "
    "of the second half";

// Where the steady state begins in a cumulative count series sampled at times `t` (seconds): the
// first sample from which the rate over the next `window` samples is within `tolerance` of the
// median rate of the run's second half; capped at half the run. No value when the series is too
// short (under 2 * window + 2 samples) or the second half delivers nothing.
std::optional<double> FindSteadyStart(const std::vector<double>& t,
                                      const std::vector<int64_t>& counts, size_t window = 5,
                                      double tolerance = 0.2);

}  // namespace sluice::trace
