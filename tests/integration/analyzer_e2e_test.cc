// End to end: a real pipeline traced in-process, then analyzed; the analyzer must name the
// bottleneck and predict the measured rate. (Moved from tests/analyzer, whose tests link only the
// analyzer and the trace model.)
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include "sluice/analyzer/analysis.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "sluice/tracer/tracer.h"
#include "tests/common/harness.h"

namespace sluice::analyzer {
namespace {

// End to end: a real pipeline with known costs, traced in-process for about 2 s.
//   heavy: 800 µs of CPU per element on 1 worker, batches of 4: 3.2 ms per batch, ~312/s.
//   wait: 200 µs of sleep (more on a loaded machine) on 1 worker: ~1 ms per batch, ~1000/s.
//   CPU: ~3.3 ms per batch on 2 or more cores: >= 600/s. So 'heavy' limits it, and the model's
//   bound at these knobs must match the measured rate (15% here to stay robust under sanitizers
//   on 2 cores; docs/model.md reports the figures measured with sluice profile).
TEST(AnalyzeEndToEndTest, NamesTheBottleneckAndPredictsTheMeasuredRate) {
  const test_util::TempDir temp("sluice_analyzer_e2e");
  const std::filesystem::path& dir = temp.path();
  auto doc = config::Document::Parse(R"({"name": "e2e", "stages": [
      {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 64}},
      {"name": "heavy", "op": "burn", "args": {"cpu_us": 800}, "parallelism": 1, "buffer_size": 4},
      {"name": "wait", "op": "sleep", "args": {"us": 200}, "parallelism": 1, "buffer_size": 4},
      {"name": "batch", "op": "batch", "args": {"size": 4}},
      {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]})",
                                     dir / "e2e.json");
  tracer::TracerOptions topt;
  topt.trace_path = dir / "trace.json";
  topt.interval = 0.05;
  topt.measure_disks = false;
  trace::Trace t;
  {
    tracer::Tracer tracer(topt);
    auto p = pipeline::Pipeline::Create(doc);
    pipeline::Element e;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    while (std::chrono::steady_clock::now() < end && p->Next(&e)) {
    }
    p->Stop();
    p.reset();
    tracer.Stop("completed");
    t = trace::ReadTrace(topt.trace_path);
  }
  const Analysis a = Analyze(t);
  std::cout << "[ e2e ] measured " << a.measured_outputs_per_s << " batches/s, predicted "
            << a.predicted_outputs_per_s << "; bottleneck " << a.Bottleneck().why << "\n";
  EXPECT_EQ(a.Bottleneck().kind, LimitKind::kStage);
  EXPECT_EQ(a.Bottleneck().stage, "heavy");
  EXPECT_NEAR(a.predicted_outputs_per_s / a.measured_outputs_per_s, 1.0, 0.15);
  EXPECT_EQ(a.input_bound.verdict, Verdict::kHighly);  // nothing else happens between calls
}

}  // namespace
}  // namespace sluice::analyzer
