// The subcommands of the sluice CLI; each file adds one to the app and runs it when chosen.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "sluice/analyzer/analysis.h"
#include "sluice/config/document.h"
#include "sluice/tuner/tuner.h"

namespace sluice::cli {

// A subcommand's action, run after parsing; returns the exit code.
using Action = std::function<int()>;

// `sluice run CONFIG [--seconds N] [--consumer-ms X] [--json]`
Action AddRunCommand(CLI::App& app);
// `sluice profile [--seconds N] [--out DIR] -- CMD ARGS...` or `sluice profile CONFIG ...`
Action AddProfileCommand(CLI::App& app);
// `sluice analyze TRACE [--json] [--pipeline NAME] [--cores N]`
Action AddAnalyzeCommand(CLI::App& app);
// `sluice tune TRACE [--config PATH] [--cores N] [--memory SIZE] [-o tuned.json] [--json]`
Action AddTuneCommand(CLI::App& app);

// The analysis of a trace, the tuner's plan for it and the config with the plan applied to
// `config` (nullptr: the config the trace names). Throws sluice::Error.
struct TraceTuning {
  analyzer::Analysis analysis;
  tuner::Plan plan;
  config::Document tuned;
};
TraceTuning TuneTrace(const std::string& trace_path, const config::Document* config);

// After `sluice profile`: analyzes and tunes the trace, writes `tuned_path` and prints a short
// summary. Problems are reported as warnings: the trace stays the profile's result.
void TuneAfterProfile(const std::string& trace_path, const std::string& tuned_path);

// `sluice apply TUNED [--to CONFIG] [--dry-run]`
Action AddApplyCommand(CLI::App& app);

// `sluice report TRACE [--baseline TRACE] [-o report.html] [--pipeline NAME] [--cores N]
// [--memory SIZE]`
Action AddReportCommand(CLI::App& app);

// `sluice inspect [-p BUILD_DIR] FILES... [--json] [-o ops.json]`
Action AddInspectCommand(CLI::App& app);

// After `sluice profile`: writes the HTML report of the trace to `report_path` and prints its
// path. Problems are reported as warnings: the trace stays the profile's result.
void ReportAfterProfile(const std::string& trace_path, const std::string& report_path);

}  // namespace sluice::cli
