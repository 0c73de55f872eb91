// The progress-line format shared by the tracer (writer) and `sluice profile` (reader).
#include "sluice/tracer/progress.h"

#include <istream>
#include <sstream>

#include <fmt/format.h>

namespace sluice::tracer {

std::string ProgressText(double seconds, int64_t outputs, double outputs_per_s,
                         std::string_view pipeline) {
  return fmt::format("progress {:.2f} {} {:.2f} {}\n", seconds, outputs, outputs_per_s, pipeline);
}

std::string DoneText(std::string_view reason) { return fmt::format("done {}\n", reason); }

ProgressLine ParseProgressLine(const std::string& line) {
  ProgressLine out;
  std::istringstream f(line);
  std::string kind;
  f >> kind;
  if (kind == "progress") {
    out.kind = ProgressLine::Kind::kProgress;
    f >> out.seconds >> out.outputs >> out.outputs_per_s;
    std::getline(f >> std::ws, out.pipeline);
  } else if (kind == "done") {
    out.kind = ProgressLine::Kind::kDone;
    std::getline(f >> std::ws, out.reason);
  }
  return out;
}

}  // namespace sluice::tracer
