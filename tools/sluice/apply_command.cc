// `sluice apply TUNED [--to CONFIG] [--dry-run]`: carries a tuned config's knobs onto the
// config it came from, shows the unified diff, and writes it (atomically, keeping a backup).
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/config/merge.h"
#include "sluice/trace/io.h"
#include "tools/sluice/commands.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct ApplyOptions {
  std::string tuned;
  std::string to;
  bool dry_run = false;
};

// The config a tuned file belongs to when --to is not given: the pipeline config recorded in
// the trace.json beside it (where `sluice profile` puts both).
fs::path TargetFromTrace(const fs::path& tuned) {
  const fs::path trace_path = tuned.parent_path() / "trace.json";
  if (!fs::exists(trace_path)) {
    Fail("{}: say which config to update with --to CONFIG (no trace.json beside it names one)",
         tuned.string());
  }
  trace::Trace t = trace::ReadTrace(trace_path);
  const trace::PipelineTrace* best = nullptr;
  for (const auto& p : t.pipelines) {
    if (best == nullptr || p.consumer.next_calls > best->consumer.next_calls) best = &p;
  }
  if (best == nullptr || best->config_path.empty()) {
    Fail("{}: names no pipeline config; use --to CONFIG", trace_path.string());
  }
  return best->config_path;
}

int Apply(const ApplyOptions& opt) {
  config::Document tuned = config::Document::Load(opt.tuned);
  const fs::path target_path = opt.to.empty() ? TargetFromTrace(opt.tuned) : fs::path(opt.to);
  config::Document target = config::Document::Load(target_path);
  std::vector<config::AppliedChange> changes = config::ApplyTuned(tuned, target);
  if (changes.empty()) {
    fmt::print("{}: already has every tuned setting; nothing to change\n", target_path.string());
    return 0;
  }
  fmt::print("{}",
             config::UnifiedDiff(target.original_text(), target.text(), target_path.string()));
  for (const auto& c : changes) fmt::print("  stage '{}': {}\n", c.stage, c.what);
  if (opt.dry_run) {
    fmt::print("dry run: {} not written\n", target_path.string());
    return 0;
  }
  fs::path backup = target_path;
  backup += ".bak";
  target.Save(target_path, backup);
  fmt::print("wrote {} ({} change{}); the previous version is in {}\n", target_path.string(),
             changes.size(), changes.size() == 1 ? "" : "s", backup.string());
  return 0;
}

}  // namespace

Action AddApplyCommand(CLI::App& app) {
  auto opt = std::make_shared<ApplyOptions>();
  CLI::App* sub = app.add_subcommand(
      "apply", "Write a tuned config's settings into the pipeline config (shows the diff first)");
  sub->add_option("tuned", opt->tuned, "The tuned config (from sluice tune -o or sluice profile)")
      ->required();
  sub->add_option("--to", opt->to,
                  "The config to update (default: the one the trace beside TUNED profiled)");
  sub->add_flag("--dry-run", opt->dry_run, "Show the diff without writing");
  return [opt] { return Apply(*opt); };
}

}  // namespace sluice::cli
