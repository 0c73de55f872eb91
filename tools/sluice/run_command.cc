// `sluice run`: runs a pipeline from its config and reports rates and per-stage counters.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/autotune/autotune.h"
#include "sluice/common/clock.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/tuner/tuner.h"
#include "tools/sluice/commands.h"
#include "tools/sluice/consume.h"

namespace sluice::cli {
namespace {

struct RunOptions {
  std::string config;
  double seconds = 0;      // 0: until the data ends
  double consumer_ms = 0;  // simulated training step per output
  bool json = false;
  int64_t epochs = 0;  // 0: as the config says
  double warmup = 0;   // seconds before the steady window
  bool autotune = false;
  std::string out = "sluice-autotune";  // with --autotune: trace.json and tuned.json
  double cores = 0;                     // with --autotune: the CPU budget; 0: the host's
  std::string memory;                   // with --autotune: the memory budget
  double interval = 2;                  // with --autotune: seconds between decisions
  std::string policy = "model";         // with --autotune: "model", "hill" or "observe"
};

// The "autotune" object of `sluice run --autotune --json`: every knob change with its re-tune's
// prediction and measurement, and the run's convergence.
nlohmann::ordered_json AutotuneJson(const autotune::Summary& s, const std::string& trace_path) {
  nlohmann::ordered_json changes = nlohmann::ordered_json::array();
  nlohmann::ordered_json replans = nlohmann::ordered_json::array();
  for (const trace::Retune& r : s.retunes) {
    if (r.action == "replan") {
      replans.push_back({{"t", r.t},
                         {"why", r.reason},
                         {"before", r.before_outputs_per_s},
                         {"predicted", r.predicted_outputs_per_s}});
    }
    for (const trace::RetuneChange& c : r.changes) {
      changes.push_back({{"t", r.t},
                         {"action", r.action},
                         {"stage", c.stage},
                         {"knob", c.knob},
                         {"from", c.from},
                         {"to", c.to},
                         {"when", c.when},
                         {"why", r.action == "apply" ? c.why : r.reason},
                         {"predicted", r.predicted_outputs_per_s},
                         {"measured", r.measured_outputs_per_s},
                         {"kept", r.kept}});
    }
  }
  return {{"changes", changes},
          {"replans", replans},
          {"retunes", s.retunes.size()},
          {"final_outputs_per_s", s.final_outputs_per_s},
          {"converged_after_s", s.converged_after_s},
          {"tuner_cpu_seconds", s.tuner_cpu_seconds},
          {"model_error", s.model_error},
          {"calibrated_model_error", s.calibrated_error},
          {"trace", trace_path},
          {"tuned", s.tuned_path}};
}

void PrintAutotune(const autotune::Summary& s, const std::string& trace_path) {
  fmt::print(
      "\nautotune: {} re-tune{}; {:.1f} outputs/s over the last 5 s, converged after {:.1f} s\n",
      s.retunes.size(), s.retunes.size() == 1 ? "" : "s", s.final_outputs_per_s,
      s.converged_after_s);
  for (const trace::Retune& r : s.retunes) {
    std::string knobs;
    for (const trace::RetuneChange& c : r.changes) {
      knobs += fmt::format("{}{}{}", knobs.empty() ? "" : ", ", trace::ChangeText(c),
                           c.when == "now" ? "" : " (" + c.when + ")");
    }
    fmt::print("  {:6.1f} s {:<8} {}\n           {}\n", r.t, r.action,
               knobs.empty() ? "(no change)" : knobs, r.reason);
    if (r.action == "apply") {
      fmt::print("           before {:.1f}, predicted {:.1f}, measured {} outputs/s: {}\n",
                 r.before_outputs_per_s, r.predicted_outputs_per_s,
                 r.measured_outputs_per_s < 0 ? std::string("-")
                                              : fmt::format("{:.1f}", r.measured_outputs_per_s),
                 r.kept ? "kept" : "rolled back");
    }
  }
  fmt::print("the tuner's own CPU: {:.3f} s (the tracer's is in the trace)\n", s.tuner_cpu_seconds);
  fmt::print("trace: {}; the last config: {}\n", trace_path,
             s.tuned_path.empty() ? "not written" : s.tuned_path);
}

// Elements counted at the pipeline's widest stage (images before batching, lines of text).
int64_t ElementCount(const pipeline::PipelineSnapshot& snap) {
  int64_t n = 0;
  for (const auto& s : snap.stages) n = std::max(n, s.elements_out);
  return n;
}

nlohmann::ordered_json ToJson(const pipeline::PipelineSnapshot& snap, int64_t outputs,
                              double seconds) {
  nlohmann::ordered_json j;
  const int64_t elements = ElementCount(snap);
  j["name"] = snap.name;
  j["outputs"] = outputs;
  j["elements"] = elements;
  j["seconds"] = seconds;
  j["outputs_per_s"] = seconds > 0 ? outputs / seconds : 0.0;
  j["elements_per_s"] = seconds > 0 ? elements / seconds : 0.0;
  j["epochs_completed"] = snap.finished ? snap.epoch + 1 : snap.epoch;
  auto& stages = j["stages"] = nlohmann::ordered_json::array();
  for (const auto& s : snap.stages) {
    stages.push_back({{"name", s.name},
                      {"op", s.op},
                      {config::kKnobParallelism, s.parallelism},
                      {config::kKnobBufferSize, s.buffer_size},
                      {"async", s.async},
                      {"elements_in", s.elements_in},
                      {"elements_out", s.elements_out},
                      {"bytes_out", s.bytes_out},
                      {"cpu_seconds", s.cpu_seconds},
                      {"busy_seconds", s.busy_seconds},
                      {"blocked_input_seconds", s.blocked_input_seconds},
                      {"blocked_output_seconds", s.blocked_output_seconds},
                      {"queue_mean", s.queue_mean},
                      {"queue_max", s.queue_max},
                      {"parallelizable", s.properties.parallelizable},
                      {"deterministic", s.properties.deterministic},
                      {"stateless", s.properties.stateless}});
  }
  j["consumer"] = {{"next_calls", snap.consumer.next_calls},
                   {"wait_seconds", snap.consumer.wait_seconds},
                   {"between_seconds", snap.consumer.between_seconds}};
  return j;
}

void PrintText(const pipeline::PipelineSnapshot& snap, int64_t outputs, double seconds) {
  const int64_t elements = ElementCount(snap);
  fmt::print("pipeline '{}': {} outputs in {:.2f} s\n", snap.name, outputs, seconds);
  fmt::print("  outputs/s   {:>12.1f}   (items delivered to the consumer)\n",
             seconds > 0 ? outputs / seconds : 0.0);
  fmt::print("  elements/s  {:>12.1f}   (items at the widest stage, before batching)\n",
             seconds > 0 ? elements / seconds : 0.0);
  double wait_share = seconds > 0 ? snap.consumer.wait_seconds / seconds : 0.0;
  fmt::print("  consumer waited {:.2f} s in Next() ({:.0f}% of the run)\n\n",
             snap.consumer.wait_seconds, 100 * wait_share);
  fmt::print("  {:<16} {:<20} {:>4} {:>5} {:>10} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}\n",
             "stage", "op", "par", "buf", "in", "out", "out/s", "cpu s", "busy s", "blk in",
             "blk out", "queue");
  for (const auto& s : snap.stages) {
    std::string queue = s.async ? fmt::format("{:.1f}/{}", s.queue_mean, s.buffer_size) : "-";
    fmt::print(
        "  {:<16} {:<20} {:>4} {:>5} {:>10} {:>10} {:>9.1f} {:>8.3f} {:>8.3f} {:>8.3f} "
        "{:>8.3f} {:>7}\n",
        s.name.substr(0, 16), s.op.substr(0, 20), s.parallelism, s.buffer_size, s.elements_in,
        s.elements_out, seconds > 0 ? s.elements_out / seconds : 0.0, s.cpu_seconds, s.busy_seconds,
        s.blocked_input_seconds, s.blocked_output_seconds, queue);
  }
}

int Run(const RunOptions& opt) {
  config::Document doc = config::Document::Load(opt.config);
  for (const std::string& w : doc.warnings()) fmt::print(stderr, "sluice: warning: {}\n", w);
  pipeline::PipelineOptions popt;
  if (opt.epochs != 0) popt.epochs = opt.epochs;
  std::unique_ptr<autotune::Autotuner> tuner;
  const std::string trace_path = (std::filesystem::path(opt.out) / "trace.json").string();
  if (opt.autotune) {
    autotune::AutotuneOptions aopt;
    aopt.tracer.trace_path = trace_path;
    aopt.interval = opt.interval;
    if (opt.policy == "hill") aopt.policy = autotune::Policy::kHillClimb;
    if (opt.policy == "observe") aopt.policy = autotune::Policy::kObserve;
    if (opt.cores > 0) aopt.cores = opt.cores;
    if (!opt.memory.empty()) aopt.memory_bytes = tuner::ParseMemorySize(opt.memory);
    tuner = std::make_unique<autotune::Autotuner>(aopt);
  }
  auto pipe = pipeline::Pipeline::Create(doc, popt);

  const bool progress = ::isatty(STDERR_FILENO) && !opt.json;
  ConsumeResult r = Consume(*pipe, opt.seconds, opt.consumer_ms, progress, opt.warmup);
  std::optional<autotune::Summary> tuned;
  if (tuner) tuned = tuner->Stop(r.interrupted ? "signal SIGINT" : "completed");
  pipe->Stop();
  const int64_t outputs = r.outputs;
  const double seconds = r.seconds;
  auto snap = pipe->Snapshot();
  if (opt.json) {
    nlohmann::ordered_json j = ToJson(snap, outputs, seconds);
    if (opt.warmup > 0) {
      j["warmup_seconds"] = opt.warmup;
      j["steady_seconds"] = r.steady_seconds;
      j["steady_outputs_per_s"] = r.steady_seconds > 0 ? r.steady_outputs / r.steady_seconds : 0.0;
    }
    if (tuned) j["autotune"] = AutotuneJson(*tuned, trace_path);
    fmt::print("{}\n", j.dump(2));
  } else {
    PrintText(snap, outputs, seconds);
    if (opt.warmup > 0 && r.steady_seconds > 0) {
      fmt::print("steady: {:.1f} outputs/s over {:.2f} s after a {:.1f} s warm-up\n",
                 r.steady_outputs / r.steady_seconds, r.steady_seconds, opt.warmup);
    }
    if (tuned) PrintAutotune(*tuned, trace_path);
  }
  return 0;
}

}  // namespace

Action AddRunCommand(CLI::App& app) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Run a pipeline from its config and print its rates");
  sub->add_option("config", opt->config, "Pipeline config (JSON)")->required();
  sub->add_option("--seconds", opt->seconds, "Stop after this many seconds (default: end of data)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--consumer-ms", opt->consumer_ms,
                  "Simulate a training step of this many milliseconds per output")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--epochs", opt->epochs, "Override the config's epochs (-1: forever)");
  sub->add_option("--warmup", opt->warmup,
                  "Also report the steady rate over the time after this many seconds")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--json", opt->json, "Print machine-readable JSON");
  sub->add_flag("--autotune", opt->autotune,
                "Tune the knobs while it runs (traced to DIR/trace.json; the last config is "
                "written to DIR/tuned.json)");
  sub->add_option("--out", opt->out,
                  "With --autotune: the output directory (default "
                  "sluice-autotune)");
  sub->add_option("--cores", opt->cores, "With --autotune: the CPU budget (default: the host's)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--memory", opt->memory,
                  "With --autotune: the memory budget, 512M, 4G or bytes (default: half the "
                  "available memory)");
  sub->add_option("--interval", opt->interval,
                  "With --autotune: seconds between decisions (default 2)")
      ->check(CLI::Range(0.2, 600.0));
  sub->add_option("--autotune-policy", opt->policy,
                  "With --autotune: model (default), hill (the hill-climbing baseline, for "
                  "comparison), or observe (measured and reported the same way, nothing "
                  "changed: the config's own figures)")
      ->check(CLI::IsMember({"model", "hill", "observe"}));
  return [opt] { return Run(*opt); };
}

}  // namespace sluice::cli
