// The sections of the report, each rendered from one run's trace, analysis and plan.
#pragma once

#include <string>
#include <vector>

#include "sluice/report/report.h"

namespace sluice::report::internal {

// One run as the sections see it: the pipeline the analysis is about, and its units.
struct View {
  const Run& run;
  const trace::PipelineTrace& pipeline;
  std::string noun;  // "batch" or "output"
  std::string unit;  // "batches/s" or "outputs/s"

  const trace::Trace& trace() const { return run.trace; }
  const analyzer::Analysis& analysis() const { return run.analysis; }
};

// The pipeline of `run.trace` the analysis is about. Throws sluice::Error when it is not there.
View MakeView(const Run& run);

// A series sampled at `x`, thinned to at most `kMaxPoints` points for the page.
struct Points {
  std::vector<double> x;
  std::vector<double> y;
};
inline constexpr size_t kMaxPoints = 480;
// The most points of a chart of the recent samples at full resolution: the 6,600 samples a
// trace holds at full resolution with the default policy (660 s at 100 ms) fit.
inline constexpr size_t kFullResolutionPoints = 8000;

// The rate of a cumulative column (per second, times `scale`), averaged over buckets of
// consecutive samples: each point is the exact mean rate over its bucket. Negative values
// (unknown) give no point.
Points Rates(const std::vector<double>& t, const std::vector<double>& cumulative, double scale = 1,
             size_t max_points = kMaxPoints);
// The mean of an instantaneous column per bucket (times `scale`), skipping negative values.
Points Means(const std::vector<double>& t, const std::vector<double>& values, double scale = 1,
             size_t max_points = kMaxPoints);

// The pipeline's own sample times (its series start at `first_index` of the trace's).
std::vector<double> PipelineTimes(const View& v);

std::string PipelineSection(const View& v);
std::string StagesSection(const View& v);
std::string LimitsSection(const View& v);
std::string TimelineSection(const View& v);
std::string PlanSection(const View& v, const ReportInput& in);
std::string WhatIfSection(const View& v, const ReportInput& in);
std::string EnvironmentSection(const View& v);
// The re-tunes of an autotuned run; empty when the pipeline has none.
std::string RetunesSection(const View& v);
// The label of re-tune `index` on charts and in the table ("re-tune 2", "rollback 3").
std::string RetuneLabel(const trace::Retune& r, size_t index);
std::string GlossarySection(const View& v);

// "the job was killed by SIGSEGV (Segmentation fault) after 4.2 s": how a trace that was cut
// short ended, in words; empty when it was not cut short.
std::string CutShortSentence(const trace::Trace& t);

// Mean CPU cores the process used over the analysis window; negative when unknown.
double MeanCoresUsed(const View& v);

}  // namespace sluice::report::internal
