// `sluice tune`: reads a trace, solves the tuner's program for its pipeline and prints the plan
// (every changed knob with its reason), optionally writing the tuned config.
//
//   sluice tune TRACE [--config PATH] [--cores N] [--memory SIZE] [-o tuned.json] [--json]
//               [--ops ops.json | --inspect BUILD_DIR]
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/config/document.h"
#include "sluice/inspect/inspect.h"
#include "sluice/trace/io.h"
#include "sluice/tuner/tuner.h"
#include "tools/sluice/commands.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct TuneCommandOptions {
  std::string trace;
  std::string config;  // empty: the pipeline's config_path in the trace
  std::string pipeline;
  double cores = 0;    // 0: the traced host's
  std::string memory;  // empty: the default budget
  std::string out;
  bool json = false;
  std::string ops;            // ops.json from `sluice inspect`; empty: declared properties only
  std::string inspect_build;  // or: inspect the ops registered in this build's sources
};

// The config the trace was taken with: --config, else the path the trace names (as written,
// then beside the trace), else the config text the trace carries.
config::Document LoadConfig(const TuneCommandOptions& opt, const trace::PipelineTrace& p) {
  if (!opt.config.empty()) return config::Document::Load(opt.config);
  if (!p.config_path.empty()) {
    const fs::path path(p.config_path);
    if (fs::exists(path)) return config::Document::Load(path);
    const fs::path beside = fs::path(opt.trace).parent_path() / path.filename();
    if (fs::exists(beside)) return config::Document::Load(beside);
  }
  if (!p.config_text.empty()) {
    return config::Document::Parse(
        p.config_text, p.config_path.empty() ? fs::path(opt.trace) : fs::path(p.config_path));
  }
  Fail("{}: pipeline '{}' names no config the tuner can find ('{}'); pass --config PATH", opt.trace,
       p.name, p.config_path);
}

void PrintText(const tuner::Plan& plan, const std::string& written) {
  const std::string unit = plan.output_noun == "batch" ? "batches/s" : "outputs/s";
  fmt::print("pipeline '{}': tuned for {} cores and {} MB of buffers and cache\n", plan.pipeline,
             Num(plan.cores), Num(plan.memory_budget_bytes / 1e6));
  fmt::print("  now       {} {} measured ({} predicted at the traced knobs)\n",
             Num(plan.current_outputs_per_s), unit, Num(plan.current_predicted_outputs_per_s));
  fmt::print("  predicted {} {} with the changes below ({}x)\n", Num(plan.predicted_outputs_per_s),
             unit, Num(plan.speedup));
  if (!plan.prediction.limits.empty()) {
    fmt::print("  then limited by: {}\n", plan.prediction.limits.front().why);
  }
  fmt::print("  {} worker thread{}, {} MB in queues, workers and cache\n\n", plan.threads,
             plan.threads == 1 ? "" : "s", Num(plan.memory_bytes / 1e6));
  if (plan.changes.empty()) {
    fmt::print("no change: the traced knobs are already the best the model finds\n");
  } else {
    fmt::print("changes:\n");
    for (const tuner::Change& c : plan.changes) {
      fmt::print("  {}.{}: {} -> {}\n    {}\n    {}\n", c.stage, c.knob, c.from, c.to, c.why,
                 c.effect);
    }
  }
  for (const std::string& note : plan.notes) fmt::print("note: {}\n", note);
  if (!written.empty()) {
    fmt::print("\nwrote the tuned config to {}\n", written);
  } else if (!plan.changes.empty()) {
    fmt::print("\nwrite the tuned config with -o tuned.json\n");
  }
}

int Tune(const TuneCommandOptions& opt) {
  trace::Trace t = trace::ReadTrace(opt.trace);
  // Inspected properties override the declared ones conservatively, before anything reads them.
  std::map<std::string, std::vector<std::string>> inspect_warnings;
  if (!opt.ops.empty() || !opt.inspect_build.empty()) {
    const inspect::OpsReport ops =
        !opt.ops.empty() ? inspect::LoadOpsJson(opt.ops)
                         : inspect::Inspect(inspect::SourcesRegisteringOps(opt.inspect_build),
                                            {.build_dir = opt.inspect_build});
    for (trace::PipelineTrace& p : t.pipelines) {
      inspect_warnings[p.name] = inspect::ApplyInspection(ops, p);
    }
  }
  analyzer::AnalyzeOptions aopt;
  aopt.pipeline = opt.pipeline;
  aopt.origin = opt.trace;
  if (opt.cores > 0) aopt.cores = opt.cores;
  const analyzer::Analysis a = analyzer::Analyze(t, aopt);
  const trace::PipelineTrace* pipeline = nullptr;
  for (const trace::PipelineTrace& p : t.pipelines) {
    if (p.name == a.pipeline) pipeline = &p;
  }
  if (!pipeline) Fail("{}: pipelines: no pipeline named '{}'", opt.trace, a.pipeline);
  const config::Document doc = LoadConfig(opt, *pipeline);

  tuner::TuneOptions topt = tuner::OptionsFromConfig(doc);
  if (opt.cores > 0) topt.cores = opt.cores;
  if (!opt.memory.empty()) topt.memory_bytes = tuner::ParseMemorySize(opt.memory);
  topt.sample_interval = t.tracer.interval > 0 ? t.tracer.interval : 0.1;
  tuner::Plan plan = tuner::Tune(a, *pipeline, topt);
  for (const std::string& w : inspect_warnings[pipeline->name]) {
    fmt::print(stderr, "sluice: warning: {}\n", w);
    plan.notes.push_back("inspect: " + w);
  }
  const config::Document tuned = tuner::ApplyPlan(plan, doc);

  std::string written;
  if (!opt.out.empty()) {
    const fs::path out(opt.out);
    // Keep what was there as a backup: the tuner never silently destroys a config.
    tuned.Save(out, fs::path(out.string() + ".bak"));
    written = out.string();
  }
  if (opt.json) {
    fmt::print("{}", tuner::ToJson(plan, tuned));
  } else {
    PrintText(plan, written);
  }
  return 0;
}

}  // namespace

TraceTuning TuneTrace(const std::string& trace_path, const config::Document* config) {
  TuneCommandOptions opt;
  opt.trace = trace_path;
  const trace::Trace t = trace::ReadTrace(trace_path);
  analyzer::AnalyzeOptions aopt;
  aopt.origin = trace_path;
  analyzer::Analysis a = analyzer::Analyze(t, aopt);
  const trace::PipelineTrace* pipeline = nullptr;
  for (const trace::PipelineTrace& p : t.pipelines) {
    if (p.name == a.pipeline) pipeline = &p;
  }
  if (pipeline == nullptr) Fail("{}: pipelines: no pipeline named '{}'", trace_path, a.pipeline);
  const config::Document doc = config ? *config : LoadConfig(opt, *pipeline);
  tuner::TuneOptions topt = tuner::OptionsFromConfig(doc);
  topt.sample_interval = t.tracer.interval > 0 ? t.tracer.interval : 0.1;
  tuner::Plan plan = tuner::Tune(a, *pipeline, topt);
  config::Document tuned = tuner::ApplyPlan(plan, doc);
  return {std::move(a), std::move(plan), std::move(tuned)};
}

void TuneAfterProfile(const std::string& trace_path, const std::string& tuned_path) {
  try {
    const TraceTuning t = TuneTrace(trace_path, nullptr);
    t.tuned.Save(tuned_path, fs::path(tuned_path + ".bak"));
    const tuner::Plan& plan = t.plan;
    const std::string unit = plan.output_noun == "batch" ? "batches/s" : "outputs/s";
    fmt::print("bottleneck: {}\n",
               t.analysis.limits.empty() ? "none found" : t.analysis.Bottleneck().why);
    fmt::print("tuned: {} {} now, {} predicted with {} change{} ({}x)\n",
               Num(plan.current_outputs_per_s), unit, Num(plan.predicted_outputs_per_s),
               plan.changes.size(), plan.changes.size() == 1 ? "" : "s", Num(plan.speedup));
    fmt::print("wrote {}: see the plan with `sluice tune {}`, apply it with `sluice apply {}`\n",
               tuned_path, trace_path, tuned_path);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice: no tuned config: {}\n", e.what());
  }
}

Action AddTuneCommand(CLI::App& app) {
  auto opt = std::make_shared<TuneCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "tune", "Choose workers, queue sizes and a cache for a traced pipeline, with reasons");
  sub->add_option("trace", opt->trace, "A trace written by sluice profile (trace.json)")
      ->required();
  sub->add_option("--config", opt->config,
                  "The pipeline config to tune (default: the one the trace names)");
  sub->add_option("--pipeline", opt->pipeline,
                  "The pipeline to tune (default: the one that delivered the most outputs)");
  sub->add_option("--cores", opt->cores, "Plan for this many cores instead of the traced host's")
      ->check(CLI::PositiveNumber);
  sub->add_option("--memory", opt->memory,
                  "Memory for queues, in-flight elements and a cache: 512M, 4G or bytes "
                  "(default: half the host memory the job left free)");
  sub->add_option("-o,--out", opt->out, "Write the tuned config here (atomically)");
  sub->add_flag("--json", opt->json, "Print machine-readable JSON");
  sub->add_option("--ops", opt->ops,
                  "Inspected op properties (ops.json from sluice inspect): an op inspected "
                  "non-deterministic gets no cache below it, one inspected stateful no workers")
      ->check(CLI::ExistingFile);
  sub->add_option("--inspect", opt->inspect_build,
                  "Inspect the ops registered in the sources of this build directory's "
                  "compile_commands.json instead of reading --ops")
      ->excludes("--ops");
  return [opt] { return Tune(*opt); };
}

}  // namespace sluice::cli
