// Tracer overhead: the same pipelines run with and without the tracer, alternating, and the
// tracer's own CPU time. Prints a Markdown table for docs/benchmarks.md.
//
//   build/bin/tracer_bench [--seconds 3] [--rounds 3] [--image-config
//   examples/image_pipeline_2workers.json]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/tracer/tracer.h"

namespace {

using sluice::config::Document;

struct Run {
  double outputs_per_s = 0;
  double tracer_cpu = 0;
  double process_cpu = 0;
};

Run Measure(const Document& doc, double seconds, double interval) {
  std::unique_ptr<sluice::tracer::Tracer> tracer;
  const auto dir = std::filesystem::temp_directory_path() / "sluice_tracer_bench";
  if (interval > 0) {
    sluice::tracer::TracerOptions opt;
    opt.trace_path = dir / "trace.json";
    opt.interval = interval;
    opt.measure_disks = false;
    tracer = std::make_unique<sluice::tracer::Tracer>(opt);
  }
  auto pipe = sluice::pipeline::Pipeline::Create(doc, {.epochs = -1});
  sluice::pipeline::Element e;
  const int64_t cpu0 = sluice::ProcessCpuNanos();
  const int64_t start = sluice::MonotonicNanos();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  int64_t outputs = 0;
  while (sluice::MonotonicNanos() < end && pipe->Next(&e)) ++outputs;
  Run r;
  r.outputs_per_s = outputs / ((sluice::MonotonicNanos() - start) * 1e-9);
  r.process_cpu = (sluice::ProcessCpuNanos() - cpu0) * 1e-9;
  pipe.reset();
  if (tracer) {
    tracer->Stop("completed");
    r.tracer_cpu = tracer->Current().tracer.cpu_seconds;
  }
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice tracer overhead", "tracer_bench"};
  double seconds = 3;
  int rounds = 3;
  std::string image_config = "examples/image_pipeline_2workers.json";
  app.add_option("--seconds", seconds, "Seconds per run");
  app.add_option("--rounds", rounds, "Alternating rounds (untraced, 100 ms, 10 ms)");
  app.add_option("--image-config", image_config, "The image example's config");
  CLI11_PARSE(app, argc, argv);
  try {
    const std::string synthetic = R"({"name": "synthetic", "stages": [
        {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 1024}},
        {"name": "a", "op": "burn", "args": {"cpu_us": 50}, "parallelism": 2, "buffer_size": 64},
        {"name": "b", "op": "burn", "args": {"cpu_us": 5}},
        {"name": "batch", "op": "batch", "args": {"size": 32}},
        {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]})";
    std::vector<std::pair<std::string, Document>> cases = {
        {"synthetic (2 workers, 55 us/element)", Document::Parse(synthetic, "synthetic.json")},
        {"image (2 workers per stage)", Document::Load(image_config)}};
    fmt::print(
        "| pipeline | tracing | outputs/s (median of {}) | vs untraced | tracer CPU s per "
        "traced s | tracer share of process CPU |\n|---|---|---|---|---|---|\n",
        rounds);
    for (auto& [name, doc] : cases) {
      std::vector<double> rates[3], cpu_share[3], tracer_per_s[3];
      const double intervals[3] = {0, 0.1, 0.01};
      for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < 3; ++k) {
          Run run = Measure(doc, seconds, intervals[k]);
          rates[k].push_back(run.outputs_per_s);
          cpu_share[k].push_back(run.process_cpu > 0 ? run.tracer_cpu / run.process_cpu : 0);
          tracer_per_s[k].push_back(run.tracer_cpu / seconds);
        }
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const double base = median(rates[0]);
      for (int k = 0; k < 3; ++k) {
        fmt::print("| {} | {} | {:.1f} | {:+.1f}% | {} | {} |\n", name,
                   k == 0 ? "off" : fmt::format("every {:.0f} ms", intervals[k] * 1000),
                   median(rates[k]), 100 * (median(rates[k]) / base - 1),
                   k == 0 ? "-" : fmt::format("{:.4f}", median(tracer_per_s[k])),
                   k == 0 ? "-" : fmt::format("{:.2f}%", 100 * median(cpu_share[k])));
      }
    }
  } catch (const sluice::Error& e) {
    std::fprintf(stderr, "tracer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
