// The HTML report (`sluice report`): one self-contained file with the verdict, the pipeline
// graph, the stage table, time-series charts, the tuning plan, the what-if curve, the
// environment and a glossary, rendered from a trace, its analysis and its plan. What each
// section shows: docs/report.md.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "sluice/trace/trace.h"
#include "sluice/tuner/tuner.h"

namespace sluice::report {

// One traced run: the trace, where it came from, and the analysis of one of its pipelines.
struct Run {
  trace::Trace trace;
  std::string origin;  // the trace's path, as the user named it
  analyzer::Analysis analysis;
};

// One round of `sluice profile CONFIG`'s trials (DIR/trials.json): round 0 is the config as
// given; each later round ran the tuner's next candidate traced and measured it.
struct TrialRound {
  int round = 0;
  std::string changes;                            // the knobs the round changed ("" for round 0)
  bool tried = true;                              // false: kept on the model's word (a cache)
  std::optional<double> predicted_outputs_per_s;  // by the model, before the trial
  std::optional<double> measured_outputs_per_s;
  bool kept = false;
  std::string error;  // why the trial failed, if it did
};

// Everything the report shows. The report renders what it is given and computes nothing but
// chart data and the what-if curve (through analyzer::Predict).
struct ReportInput {
  Run run;
  // The tuner's plan for `run`; absent when it could not be made, `plan_error` then says why.
  std::optional<tuner::Plan> plan;
  std::string plan_error;
  // An earlier run to compare with ("before"); `run` is then "after".
  std::optional<Run> baseline;
  std::string generator = "sluice";  // who wrote the report, e.g. "sluice 0.1.0"
  // The trials of the profile that wrote `run`'s trace, when it ran any; `kept_round` is the
  // round whose config the profile kept.
  std::vector<TrialRound> trials;
  int kept_round = 0;
};

// The id of every section the report always has, in page order; "comparison" is added after
// the verdict when a baseline is given.
inline constexpr const char* kSectionIds[] = {"verdict", "pipeline",    "stages",
                                              "limits",  "timeline",    "plan",
                                              "whatif",  "environment", "glossary"};
inline constexpr const char* kComparisonId = "comparison";

// The report as one HTML document (well-formed XML too: every element closed, every attribute
// quoted), with inline CSS and SVG and no script or external resource. Throws sluice::Error when
// the analysis does not belong to the trace (its pipeline is not in it).
std::string Render(const ReportInput& input);

// Writes `html` to `path` atomically (a temporary file in the same directory, then rename), so a
// browser never opens a half-written report. Throws sluice::Error naming the path.
void WriteReport(std::string_view html, const std::filesystem::path& path);

// `text` with &, <, >, " and ' replaced by character references: safe in element text, in quoted
// attribute values and inside SVG <title> tooltips. Invalid UTF-8 and control characters other
// than tab and newline become U+FFFD, so that any trace string yields a well-formed document.
std::string Escape(std::string_view text);

}  // namespace sluice::report
