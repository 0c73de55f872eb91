// The progress lines a tracer writes to TracerOptions::progress_fd (SLUICE_TRACE_PROGRESS_FD) and
// `sluice profile` reads from its job, one per line:
//   progress SECONDS OUTPUTS OUTPUTS_PER_S PIPELINE   after each sample: the busiest pipeline
//   done REASON                                       once, when the final trace is written
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/tracer/export.h"

namespace sluice::tracer {

struct ProgressLine {
  enum class Kind { kOther, kProgress, kDone };
  Kind kind = Kind::kOther;
  double seconds = 0;        // kProgress: seconds since tracing began
  int64_t outputs = 0;       // kProgress: the busiest pipeline's outputs so far
  double outputs_per_s = 0;  // kProgress: its rate over about the last second
  std::string pipeline;      // kProgress: its name
  std::string reason;        // kDone: how tracing ended ("window elapsed", "completed", ...)
};

// The "progress" line, newline included.
SLUICE_TRACER_EXPORT std::string ProgressText(double seconds, int64_t outputs, double outputs_per_s,
                                              std::string_view pipeline);

// The "done" line, newline included.
SLUICE_TRACER_EXPORT std::string DoneText(std::string_view reason);

// One line (without its newline); kind kOther for a line of another kind, and fields left at
// zero where a progress line lacks them.
SLUICE_TRACER_EXPORT ProgressLine ParseProgressLine(const std::string& line);

}  // namespace sluice::tracer
