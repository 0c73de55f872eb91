// Renders the HTML report of a one-hour trace (36,001 samples every 100 ms, 10 stages) and
// prints its size and the time each step takes. Results: docs/benchmarks.md.
//
//   build/bin/report_bench [--out DIR] [--repeat N]
//   time build/bin/sluice report DIR/hour.json -o DIR/r.html   # the whole command
#include <chrono>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "../tests/report/synthetic_trace.h"  // the same one-hour trace the report tests use
#include "sluice/analyzer/analysis.h"
#include "sluice/report/report.h"
#include "sluice/trace/io.h"
#include "sluice/tuner/tuner.h"

namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time the HTML report of a one-hour trace", "report_bench"};
  std::string out;
  int repeat = 5;
  app.add_option("--out", out, "Also write DIR/hour.json and DIR/report.html");
  app.add_option("--repeat", repeat, "Renders to time (the best is reported)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  using sluice::report::testing::OneHourSpec;
  using sluice::report::testing::SyntheticSpec;
  const SyntheticSpec spec = OneHourSpec();

  sluice::report::ReportInput in;
  in.run.trace = sluice::report::testing::BuildTrace(spec);
  in.run.origin = "hour.json";
  auto t0 = std::chrono::steady_clock::now();
  in.run.analysis = sluice::analyzer::Analyze(in.run.trace);
  const double analyze_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  in.plan = sluice::tuner::Tune(in.run.analysis, in.run.trace.pipelines[0]);
  const double tune_s = Since(t0);
  double best = 1e9;
  std::string html;
  for (int r = 0; r < repeat; ++r) {
    t0 = std::chrono::steady_clock::now();
    html = sluice::report::Render(in);
    best = std::min(best, Since(t0));
  }
  fmt::print("one-hour trace: {} samples per series, {} stages\n", in.run.trace.series.t.size(),
             spec.stages.size());
  fmt::print("analyze {:.1f} ms, tune {:.1f} ms, render {:.1f} ms (best of {})\n", analyze_s * 1e3,
             tune_s * 1e3, best * 1e3, repeat);
  fmt::print("report: {} bytes ({:.2f} MB)\n", html.size(), html.size() / 1e6);
  if (!out.empty()) {
    std::filesystem::create_directories(out);
    sluice::trace::WriteTrace(in.run.trace, std::filesystem::path(out) / "hour.json");
    sluice::report::WriteReport(html, std::filesystem::path(out) / "report.html");
    t0 = std::chrono::steady_clock::now();
    const sluice::trace::Trace read =
        sluice::trace::ReadTrace(std::filesystem::path(out) / "hour.json");
    fmt::print(
        "wrote {0}/hour.json ({1:.1f} MB; reading its {3} samples back takes {2:.0f} ms) and "
        "{0}/report.html\n",
        out, std::filesystem::file_size(std::filesystem::path(out) / "hour.json") / 1e6,
        Since(t0) * 1e3, read.series.t.size());
  }
  return 0;
}
