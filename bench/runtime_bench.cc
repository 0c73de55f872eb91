// Runtime benchmarks: per-element overhead, parallel efficiency, and the image example's rate.
// Prints a Markdown table; docs/benchmarks.md records the results with this command.
//
//   build/bin/runtime_bench [--seconds 3] [--image-config examples/image_pipeline.json]
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"

namespace {

using sluice::config::Document;
using sluice::pipeline::Element;
using sluice::pipeline::Pipeline;
using sluice::pipeline::PipelineOptions;
using sluice::pipeline::PipelineSnapshot;

struct Result {
  double seconds = 0;
  int64_t outputs = 0;
  PipelineSnapshot snap;
};

// Runs `doc` endlessly for `seconds` after a short warm-up and returns what it did.
Result Measure(const Document& doc, double seconds) {
  PipelineOptions options;
  options.epochs = -1;
  auto pipe = Pipeline::Create(doc, options);
  Element e;
  const int64_t warm_until = sluice::MonotonicNanos() + 300'000'000;
  while (sluice::MonotonicNanos() < warm_until && pipe->Next(&e)) {
  }
  PipelineSnapshot before = pipe->Snapshot();
  Result r;
  const int64_t start = sluice::MonotonicNanos();
  const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  while (pipe->Next(&e)) {
    ++r.outputs;
    if ((r.outputs & 15) == 0 && sluice::MonotonicNanos() >= end) break;
  }
  r.seconds = (sluice::MonotonicNanos() - start) * 1e-9;
  r.snap = pipe->Snapshot();
  // Report only the measured window.
  for (size_t i = 0; i < r.snap.stages.size(); ++i) {
    r.snap.stages[i].elements_out -= before.stages[i].elements_out;
    r.snap.stages[i].cpu_seconds -= before.stages[i].cpu_seconds;
  }
  pipe->Stop();
  return r;
}

int64_t Widest(const PipelineSnapshot& s) {
  int64_t n = 0;
  for (const auto& st : s.stages) n = std::max(n, st.elements_out);
  return n;
}

void PinToCpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof set, &set);
}

void UnpinAll() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c = 0; c < std::thread::hardware_concurrency(); ++c) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof set, &set);
}

std::string TrivialChain(bool async) {
  std::string stages = R"({"name": "src", "op": "generate", "args": {"count": -1, "bytes": 8}})";
  for (int i = 0; i < 5; ++i) {
    stages += fmt::format(R"(, {{"name": "map{}", "op": "burn", "args": {{"cpu_us": 0}}{}}})", i,
                          async ? R"(, "buffer_size": 256)" : "");
  }
  stages += R"(, {"name": "batch", "op": "batch", "args": {"size": 64}})";
  return fmt::format(R"({{"name": "trivial", "stages": [{}]}})", stages);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice runtime benchmarks", "runtime_bench"};
  double seconds = 3;
  std::string image_config = "examples/image_pipeline.json";
  app.add_option("--seconds", seconds, "Measured seconds per case");
  app.add_option("--image-config", image_config, "The image example's config");
  CLI11_PARSE(app, argc, argv);
  const unsigned cores = std::thread::hardware_concurrency();
  try {
    fmt::print("| case | setting | outputs/s | elements/s | note |\n|---|---|---|---|---|\n");

    // (a) Per-element overhead: 5 trivial maps and a batch on one core.
    PinToCpu0();
    for (bool async : {false, true}) {
      Document doc = Document::Parse(TrivialChain(async), "trivial.json");
      Result r = Measure(doc, seconds);
      double eps = r.snap.stages[0].elements_out / r.seconds;
      fmt::print(
          "| (a) overhead, 5 trivial maps + batch(64), 1 core | {} | {:.0f} | {:.0f} | "
          "{:.0f} ns per element through 6 stages |\n",
          async ? "every map async, buffer 256" : "inline (as configured by default)",
          r.outputs / r.seconds, eps, 1e9 / eps);
    }
    UnpinAll();

    // (b) Efficiency: burn of 1000 us per element with parallelism = cores.
    {
      std::string text = fmt::format(
          R"({{"name": "burn", "stages": [
            {{"name": "src", "op": "generate", "args": {{"count": -1}}}},
            {{"name": "burn", "op": "burn", "args": {{"cpu_us": 1000}}, "parallelism": {}, "buffer_size": 16}}]}})",
          cores);
      Document doc = Document::Parse(text, "burn.json");
      Result r = Measure(doc, seconds);
      const auto& burn = r.snap.stages[1];
      double eps = burn.elements_out / r.seconds;
      double ideal = cores / 1e-3;
      double cpu_per = burn.cpu_seconds / burn.elements_out;
      fmt::print(
          "| (b) efficiency, burn 1000 us/element | parallelism {} = cores | {:.1f} | {:.1f} "
          "| {:.1f}% of ideal {:.0f}/s (cores / 1 ms); {:.1f}% of cores / measured CPU per "
          "element ({:.3f} ms) |\n",
          cores, r.outputs / r.seconds, eps, 100 * eps / ideal, ideal,
          100 * eps / (cores / cpu_per), cpu_per * 1e3);
    }

    // (c) The image example as shipped, and with two workers on every parallel stage.
    {
      Document shipped = Document::Load(image_config);
      Result r = Measure(shipped, seconds);
      fmt::print(
          "| (c) image pipeline | as shipped (parallelism 1, no prefetch) | {:.1f} | {:.1f} "
          "| images/s |\n",
          r.outputs / r.seconds, Widest(r.snap) / r.seconds);
      Document two = shipped;
      for (const auto& stage : r.snap.stages) {
        if (stage.properties.parallelizable) {
          two.SetKnob(stage.name, "parallelism", 2);
          two.SetKnob(stage.name, "buffer_size", 4);
        }
      }
      two.SetKnob(r.snap.stages.back().name, "buffer_size", 2);
      Result r2 = Measure(two, seconds);
      fmt::print(
          "| (c) image pipeline | 2 workers and buffer 4 on each parallel stage, last stage "
          "buffer 2 | {:.1f} | {:.1f} | images/s; {:.2f}x as shipped |\n",
          r2.outputs / r2.seconds, Widest(r2.snap) / r2.seconds,
          (Widest(r2.snap) / r2.seconds) / (Widest(r.snap) / r.seconds));
    }
    fmt::print("\n{} cores, {} s measured per case after 0.3 s of warm-up\n", cores, seconds);
  } catch (const sluice::Error& e) {
    std::fprintf(stderr, "runtime_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
