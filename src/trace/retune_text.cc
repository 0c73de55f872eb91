// Re-tune changes in words, for the CLI's listings and the report.
#include <fmt/format.h>

#include "sluice/trace/trace.h"

namespace sluice::trace {

std::string ChangeText(const RetuneChange& c) {
  if (c.knob == "cache") return fmt::format("cache after {}", c.stage);
  return fmt::format("{}.{} {}->{}", c.stage, c.knob, c.from, c.to);
}

}  // namespace sluice::trace
