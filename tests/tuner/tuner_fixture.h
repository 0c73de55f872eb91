// The tuner tests' fixture: a hand-built analysis and trace from a list of stages.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/memory.h"
#include "sluice/trace/trace.h"
#include "sluice/tuner/tuner.h"

namespace sluice::tuner::test {

// One stage of a hand-built analysis; demands are per output (batch), in seconds.
struct Stage {
  std::string name;
  std::string op;
  bool parallelizable = false;
  double wall = 0;
  double cpu = -1;  // -1: same as wall
  double bytes = 1000;
  bool async = false;
  int parallelism = 1;
  int buffer_size = 0;
  bool deterministic = true;
  std::string inspected;
  int64_t elements = 1000;  // elements emitted in the trace (one epoch when epochs_completed 1)
  double visit = 1;
  double turn = 0;  // measured wait of ordered workers for their turn, s per output
};

class TunerTest : public ::testing::Test {
 protected:
  // Builds analysis_ and pipeline_ from `stages`.
  void Build(const std::vector<Stage>& stages, double step = 0,
             analyzer::Verdict verdict = analyzer::Verdict::kHighly, double cores = 4) {
    analysis_ = analyzer::Analysis();
    pipeline_ = trace::PipelineTrace();
    analysis_.pipeline = "train";
    analysis_.output_noun = "batch";
    analysis_.window.seconds = 10;
    analysis_.window.samples = 101;
    analysis_.outputs = 1000;
    analysis_.cores = cores;
    analysis_.consumer_step_seconds = step;
    analysis_.consumer_outputs_per_s = step > 0 ? 1 / step : 0;
    analysis_.memory_bytes = 16'000'000'000;
    analysis_.rss_bytes = 1'000'000'000;
    analysis_.input_bound.verdict = verdict;
    analysis_.input_bound.wait_fraction = verdict == analyzer::Verdict::kNot ? 0.01 : 0.5;
    pipeline_.name = "train";
    pipeline_.epochs_completed = 1;
    for (const Stage& s : stages) {
      analyzer::StageAnalysis a;
      a.name = s.name;
      a.op = s.op;
      a.parallelizable = s.parallelizable;
      a.async = s.async || s.parallelism > 1 || s.buffer_size > 0;
      a.parallelism = s.parallelism;
      a.buffer_size = s.buffer_size;
      a.wall_demand = s.wall;
      a.cpu_demand = s.cpu < 0 ? s.wall : s.cpu;
      a.bytes_per_element = s.bytes;
      a.visit_ratio = s.visit;
      a.turn_wait_demand = s.turn;
      a.elements = s.elements;
      analysis_.stages.push_back(a);
      trace::StageTrace t;
      t.name = s.name;
      t.op = s.op;
      t.parallelizable = s.parallelizable;
      t.deterministic = s.deterministic;
      t.inspected = s.inspected;
      t.parallelism = s.parallelism;
      t.buffer_size = s.buffer_size;
      t.async = a.async;
      t.elements_out = s.elements;
      t.bytes_out = static_cast<int64_t>(s.bytes * s.elements);
      pipeline_.stages.push_back(t);
    }
    const analyzer::Prediction now = analyzer::Predict(analysis_, analyzer::CurrentKnobs(analysis_),
                                                       analyzer::CurrentResources(analysis_));
    analysis_.predicted_outputs_per_s = now.outputs_per_s;
    analysis_.measured_outputs_per_s = now.outputs_per_s;
    analysis_.limits = now.limits;
  }

  size_t Index(const std::string& name) const {
    for (size_t i = 0; i < analysis_.stages.size(); ++i) {
      if (analysis_.stages[i].name == name) return i;
    }
    ADD_FAILURE() << "no stage " << name;
    return 0;
  }

  // The plan's figure must be the analyzer's prediction at the chosen knobs (single source).
  void ExpectPredictedByAnalyzer(const Plan& plan) const {
    analyzer::Resources r = analyzer::CurrentResources(analysis_);
    r.cores = plan.cores;
    EXPECT_DOUBLE_EQ(plan.predicted_outputs_per_s,
                     analyzer::Predict(analysis_, plan.knobs, r).outputs_per_s);
  }

  // Queue and in-flight memory of the chosen knobs (docs/tuner.md), plus the cache and the
  // runtime's tensor pool.
  double MemoryOf(const Plan& plan) const {
    double bytes = static_cast<double>(kTensorPoolIdleBytes);
    for (size_t i = 0; i < plan.knobs.stages.size(); ++i) {
      const analyzer::StageKnobs& k = plan.knobs.stages[i];
      if (k.parallelism > 1 || k.buffer_size > 0) {
        // Queued elements, and per worker its output and the inputs it consumes for it.
        const analyzer::StageAnalysis& s = analysis_.stages[i];
        const double input = i > 0 ? analysis_.stages[i - 1].visit_ratio / s.visit_ratio *
                                         analysis_.stages[i - 1].bytes_per_element
                                   : 0;
        bytes += std::max(k.buffer_size, 1) * s.bytes_per_element +
                 k.parallelism * (s.bytes_per_element + input);
      }
    }
    if (plan.knobs.cache_after) {
      const size_t k = *plan.knobs.cache_after;
      bytes += static_cast<double>(pipeline_.stages[k].elements_out) *
               analysis_.stages[k].bytes_per_element;
    }
    return bytes;
  }

  analyzer::Analysis analysis_;
  trace::PipelineTrace pipeline_;
};

}  // namespace sluice::tuner::test
