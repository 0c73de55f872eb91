// `sluice analyze`: reads a trace and says whether the job is input-bound, what limits it and
// why, with the per-stage figures of the model (docs/model.md).
//
//   sluice analyze TRACE [--json] [--pipeline NAME] [--cores N]
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/figures.h"
#include "sluice/trace/io.h"
#include "tools/sluice/commands.h"

namespace sluice::cli {
namespace {

struct AnalyzeCommandOptions {
  std::string trace;
  std::string pipeline;
  double cores = 0;  // 0: the traced host's
  bool json = false;
};

// Three significant figures, without trailing zeros: "243", "4.1", "0.0123".

std::string Ms(double seconds) { return Num(seconds * 1e3); }

void PrintText(const analyzer::Analysis& a) {
  const std::string unit = a.output_noun == "batch" ? "batches/s" : "outputs/s";
  fmt::print("pipeline '{}': steady window {:.1f}-{:.1f} s ({:.1f} s, {} samples, {} {})\n",
             a.pipeline, a.window.start, a.window.end, a.window.seconds, a.window.samples,
             a.outputs, a.output_noun == "batch" ? "batches" : "outputs");
  const double error =
      a.measured_outputs_per_s > 0 ? a.predicted_outputs_per_s / a.measured_outputs_per_s - 1 : 0.0;
  fmt::print("  measured  {} {}\n", Num(a.measured_outputs_per_s), unit);
  fmt::print("  predicted {} {} (the model's bound at these settings; {:+.1f}% from measured)\n\n",
             Num(a.predicted_outputs_per_s), unit, 100 * error);
  fmt::print("verdict: {} input-bound ({}% of the window waiting in Next())\n",
             analyzer::ToString(a.input_bound.verdict), Num(100 * a.input_bound.wait_fraction));
  fmt::print("  {}\n", a.input_bound.why);
  if (a.gpu_idle_fraction) {
    fmt::print("  the GPU was idle {:.0f}% of the window\n", 100 * *a.gpu_idle_fraction);
  }
  const analyzer::Limit& b = a.Bottleneck();
  fmt::print("\nbottleneck: {}{}\n  {}\n", analyzer::ToString(b.kind),
             b.stage.empty() ? "" : fmt::format(" '{}'", b.stage), b.why);
  fmt::print("\nlimits ({}, lowest first):\n", unit);
  for (const analyzer::Limit& l : a.limits) {
    fmt::print("  {:>10}  {:<8} {:<16} {}\n", Num(l.outputs_per_s), analyzer::ToString(l.kind),
               l.stage.substr(0, 16), l.why);
  }
  fmt::print("\nstages (per {}: D = CPU, W = wall time; U = utilization of its threads):\n",
             a.output_noun);
  fmt::print("  {:<16} {:<18} {:>4} {:>4} {:>7} {:>9} {:>9} {:>9} {:>5} {:>10}  {}\n", "stage",
             "op", "par", "buf", "V", "D ms", "W ms", "S ms", "U", "cap/s", "runs on");
  for (const analyzer::StageAnalysis& s : a.stages) {
    fmt::print("  {:<16} {:<18} {:>4} {:>4} {:>7} {:>9} {:>9} {:>9} {:>4.0f}% {:>10}  {}\n",
               s.name.substr(0, 16), s.op.substr(0, 18), s.parallelism, s.buffer_size,
               Num(s.visit_ratio), Ms(s.cpu_demand), Ms(s.wall_demand), Ms(s.service_seconds),
               100 * s.utilization,
               s.capacity_outputs_per_s > 0 ? Num(s.capacity_outputs_per_s) : "-", s.runs_on);
  }
  fmt::print("\nresources: {} cores{}{}; the process uses {} ms of CPU per {} outside the stages\n",
             Num(a.cores), a.cores_overridden ? " (--cores)" : "",
             a.host_other_cores >= 0.25
                 ? fmt::format(" (other processes used {})", Num(a.host_other_cores))
                 : "",
             Ms(a.other_cpu_demand), a.output_noun);
  if (a.consumer_outputs_per_s > 0) {
    fmt::print("consumer: {} ms per {} between Next() calls (at most {} {})\n",
               Ms(a.consumer_step_seconds), a.output_noun, Num(a.consumer_outputs_per_s), unit);
  }
  if (a.cores_to_saturate_consumer) {
    fmt::print(
        "cores the pipeline's CPU work needs to keep pace with the consumer ({} ms per {}): "
        "{}\n",
        Ms(a.consumer_step_seconds), a.output_noun, Num(*a.cores_to_saturate_consumer));
  }
  if (a.disk_bytes_per_output > 0) {
    fmt::print("disk: {} MB per {} ({}){}\n", Num(a.disk_bytes_per_output / 1e6), a.output_noun,
               a.disk_bytes_source,
               a.disk_mb_per_s > 0
                   ? fmt::format("; {} reads {} MB/s", a.disk_device, Num(a.disk_mb_per_s))
                   : "");
  }
  if (a.confidence.ok) {
    fmt::print(
        "\nconfidence: ok (rate varies {:.0f}% over {:.1f} s blocks; standard error {:.1f}%)\n",
        100 * a.confidence.rate_cv, a.confidence.block_seconds, 100 * a.confidence.rate_stderr);
  } else {
    fmt::print("\nconfidence: LOW: {}; {}\n", a.confidence.reason,
               a.confidence.more_seconds > 0
                   ? fmt::format("profile about {} more seconds", Num(a.confidence.more_seconds))
                   : fmt::format("the mean rate is already known to {:.1f}%, but the rate itself "
                                 "swings: look for periodic work in the job",
                                 100 * a.confidence.rate_stderr));
  }
  for (const std::string& note : a.notes) fmt::print("note: {}\n", note);
}

int Analyze(const AnalyzeCommandOptions& opt) {
  trace::Trace t = trace::ReadTrace(opt.trace);
  analyzer::AnalyzeOptions aopt;
  aopt.pipeline = opt.pipeline;
  if (opt.cores > 0) aopt.cores = opt.cores;
  aopt.origin = opt.trace;
  analyzer::Analysis a = analyzer::Analyze(t, aopt);
  if (opt.json) {
    fmt::print("{}", analyzer::ToJson(a));
  } else {
    PrintText(a);
  }
  return 0;
}

}  // namespace

Action AddAnalyzeCommand(CLI::App& app) {
  auto opt = std::make_shared<AnalyzeCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "analyze", "Say whether a traced job is input-bound, what limits it, and why");
  sub->add_option("trace", opt->trace, "A trace written by sluice profile (trace.json)")
      ->required();
  sub->add_flag("--json", opt->json, "Print machine-readable JSON");
  sub->add_option("--pipeline", opt->pipeline,
                  "The pipeline to analyze (default: the one that delivered the most outputs)");
  sub->add_option("--cores", opt->cores, "Predict for this many cores instead of the traced host's")
      ->check(CLI::PositiveNumber);
  return [opt] { return Analyze(*opt); };
}

}  // namespace sluice::cli
