// `sluice run`: runs a pipeline from its config and reports rates and per-stage counters.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/common/clock.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
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
};

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
  auto pipe = pipeline::Pipeline::Create(doc, popt);

  const bool progress = ::isatty(STDERR_FILENO) && !opt.json;
  ConsumeResult r = Consume(*pipe, opt.seconds, opt.consumer_ms, progress, opt.warmup);
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
    fmt::print("{}\n", j.dump(2));
  } else {
    PrintText(snap, outputs, seconds);
    if (opt.warmup > 0 && r.steady_seconds > 0) {
      fmt::print("steady: {:.1f} outputs/s over {:.2f} s after a {:.1f} s warm-up\n",
                 r.steady_outputs / r.steady_seconds, r.steady_seconds, opt.warmup);
    }
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
  return [opt] { return Run(*opt); };
}

}  // namespace sluice::cli
