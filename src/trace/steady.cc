// The warm-up / steady-window finder.
#include "sluice/trace/steady.h"

#include <algorithm>
#include <cmath>

namespace sluice::trace {

std::optional<double> FindSteadyStart(const std::vector<double>& t,
                                      const std::vector<int64_t>& counts, size_t window,
                                      double tolerance) {
  const size_t n = std::min(t.size(), counts.size());
  if (n < 2 * window + 2) return std::nullopt;
  auto rate = [&](size_t a, size_t b) {
    const double dt = t[b] - t[a];
    return dt > 0 ? static_cast<double>(counts[b] - counts[a]) / dt : 0.0;
  };
  std::vector<double> tail;
  for (size_t i = n / 2; i + 1 < n; ++i) tail.push_back(rate(i, i + 1));
  std::nth_element(tail.begin(), tail.begin() + static_cast<long>(tail.size() / 2), tail.end());
  const double steady = tail[tail.size() / 2];
  if (steady <= 0) return std::nullopt;
  for (size_t i = 0; i + window < n && i <= n / 2; ++i) {
    if (std::abs(rate(i, i + window) - steady) <= tolerance * steady) return t[i];
  }
  return t[n / 2];
}

}  // namespace sluice::trace
