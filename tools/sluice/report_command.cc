// `sluice report`: renders a trace, its analysis and its tuning plan as one self-contained HTML
// file (docs/report.md), optionally side by side with an earlier trace.
//
//   sluice report TRACE [--baseline TRACE] [-o report.html] [--pipeline NAME] [--cores N]
//                 [--memory SIZE]
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/report/report.h"
#include "sluice/trace/io.h"
#include "sluice/tuner/tuner.h"
#include "tools/sluice/commands.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct ReportCommandOptions {
  std::string trace;
  std::string baseline;
  std::string out;  // empty: report.html beside the trace
  std::string pipeline;
  double cores = 0;    // 0: the traced host's
  std::string memory;  // empty: the tuner's default budget
};

report::Run LoadRun(const std::string& path, const ReportCommandOptions& opt) {
  report::Run run;
  run.trace = trace::ReadTrace(path);
  run.origin = path;
  analyzer::AnalyzeOptions aopt;
  aopt.pipeline = opt.pipeline;
  aopt.origin = path;
  if (opt.cores > 0) aopt.cores = opt.cores;
  run.analysis = analyzer::Analyze(run.trace, aopt);
  return run;
}

// Epochs the pipeline's config asks for (0: unknown), from the config text the trace carries or
// the file it names; the tuner only places a cache when the data is read more than once.
int64_t ConfigEpochs(const trace::PipelineTrace& p) {
  try {
    if (!p.config_text.empty()) {
      return config::Document::Parse(p.config_text,
                                     p.config_path.empty() ? "config" : p.config_path)
          .epochs();
    }
    if (!p.config_path.empty() && fs::exists(p.config_path)) {
      return config::Document::Load(p.config_path).epochs();
    }
  } catch (const Error&) {
    // An unreadable config only costs the cache decision its epoch count.
  }
  return 0;
}

// The trials of the `sluice profile CONFIG` that wrote `trace_path`: DIR/trials.json beside it,
// when its round 0 names this very trace. A trials file that cannot be read is left out with a
// warning: the report stands without it.
void ReadTrials(const std::string& trace_path, report::ReportInput& in) {
  const fs::path file = fs::path(trace_path).parent_path() / "trials.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return;
  try {
    std::ifstream f(file);
    const nlohmann::json j = nlohmann::json::parse(f);
    const nlohmann::json& rounds = j.at("rounds");
    if (rounds.empty() ||
        !fs::equivalent(rounds[0].at("trace").get<std::string>(), trace_path, ec)) {
      return;  // another profile's trials
    }
    auto rate = [](const nlohmann::json& r, const char* key) -> std::optional<double> {
      if (!r.contains(key) || !r[key].is_number()) return std::nullopt;
      return r[key].get<double>();
    };
    for (const nlohmann::json& r : rounds) {
      report::TrialRound t;
      t.round = r.at("round").get<int>();
      t.changes = r.value("changes", "");
      t.tried = r.value("tried", true);
      t.predicted_outputs_per_s = rate(r, "predicted_outputs_per_s");
      t.measured_outputs_per_s = rate(r, "measured_outputs_per_s");
      t.kept = r.value("kept", false);
      t.error = r.value("error", "");
      in.trials.push_back(std::move(t));
    }
    in.kept_round = j.at("kept_round").get<int>();
  } catch (const std::exception& e) {
    in.trials.clear();
    fmt::print(stderr, "sluice: warning: {}: trials left out of the report: {}\n", file.string(),
               e.what());
  }
}

report::ReportInput BuildInput(const ReportCommandOptions& opt) {
  report::ReportInput in;
  in.generator = fmt::format("sluice {}", SLUICE_VERSION);
  in.run = LoadRun(opt.trace, opt);
  if (!opt.baseline.empty()) in.baseline = LoadRun(opt.baseline, opt);
  const trace::PipelineTrace* pipeline = nullptr;
  for (const trace::PipelineTrace& p : in.run.trace.pipelines) {
    if (p.name == in.run.analysis.pipeline) pipeline = &p;
  }
  try {
    if (pipeline == nullptr) Fail("no pipeline named '{}'", in.run.analysis.pipeline);
    tuner::TuneOptions topt;
    if (opt.cores > 0) topt.cores = opt.cores;
    if (!opt.memory.empty()) topt.memory_bytes = tuner::ParseMemorySize(opt.memory);
    topt.epochs = ConfigEpochs(*pipeline);
    topt.sample_interval = in.run.trace.tracer.interval > 0 ? in.run.trace.tracer.interval : 0.1;
    in.plan = tuner::Tune(in.run.analysis, *pipeline, topt);
  } catch (const Error& e) {
    // The report still shows the analysis; the plan section says why there is no plan.
    in.plan_error = e.what();
  }
  ReadTrials(opt.trace, in);
  return in;
}

fs::path DefaultOut(const std::string& trace_path) {
  return fs::path(trace_path).parent_path() / "report.html";
}

int Report(const ReportCommandOptions& opt) {
  const report::ReportInput in = BuildInput(opt);
  const fs::path out = opt.out.empty() ? DefaultOut(opt.trace) : fs::path(opt.out);
  report::WriteReport(report::Render(in), out);
  const analyzer::Analysis& a = in.run.analysis;
  fmt::print("pipeline '{}': {} input-bound; bottleneck: {}\n", a.pipeline,
             analyzer::ToString(a.input_bound.verdict),
             a.limits.empty() ? "none found" : a.Bottleneck().why);
  if (!in.plan_error.empty())
    fmt::print(stderr, "sluice: warning: no tuning plan: {}\n", in.plan_error);
  fmt::print("wrote {} (open it in a browser: file://{})\n", out.string(),
             fs::absolute(out).lexically_normal().string());
  return 0;
}

}  // namespace

void ReportAfterProfile(const std::string& trace_path, const std::string& report_path) {
  try {
    ReportCommandOptions opt;
    opt.trace = trace_path;
    report::WriteReport(report::Render(BuildInput(opt)), report_path);
    fmt::print("report: {}\n", report_path);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice: no report: {}\n", e.what());
  }
}

Action AddReportCommand(CLI::App& app) {
  auto opt = std::make_shared<ReportCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "report", "Write one self-contained HTML report: verdict, bottleneck, plan and charts");
  sub->add_option("trace", opt->trace, "A trace written by sluice profile (trace.json)")
      ->required();
  sub->add_option("--baseline", opt->baseline,
                  "An earlier trace of the same job, shown side by side as 'before'");
  sub->add_option("-o,--out", opt->out,
                  "Where to write the report (default: report.html beside the trace)");
  sub->add_option("--pipeline", opt->pipeline,
                  "The pipeline to report on (default: the one that delivered the most outputs)");
  sub->add_option("--cores", opt->cores,
                  "Analyze and plan for this many cores instead of the traced host's")
      ->check(CLI::PositiveNumber);
  sub->add_option("--memory", opt->memory,
                  "Memory the plan may use for queues, in-flight elements and a cache: 512M, 4G "
                  "or bytes (default: half the host memory the job left free)")
      ->check(
          [](const std::string& text) {
            try {
              tuner::ParseMemorySize(text);
              return std::string();
            } catch (const Error& e) {
              return std::string(e.what());
            }
          },
          "SIZE");
  return [opt] { return Report(*opt); };
}

}  // namespace sluice::cli
