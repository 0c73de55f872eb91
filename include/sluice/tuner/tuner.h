// The tuner: one mixed-integer program (GLPK) that chooses workers, async stages, buffer sizes
// and a cache for a pipeline from its analysis, and the plan that explains each change.
// The formulation: src/tuner/program.cc and DESIGN.md ("The tuner").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "sluice/config/document.h"
#include "sluice/trace/trace.h"

namespace sluice::tuner {

// What the tuner plans for.
struct TuneOptions {
  std::optional<double> cores;          // C_budget; absent: the analysis's cores
  std::optional<int64_t> memory_bytes;  // M_budget for queues, in-flight elements and a cache;
                                        // absent: half the host memory the job did not use
  int max_workers = 0;                  // cap on one stage's workers; 0: max(2 C, 8), at most 128
  // Epochs the job runs (the config's "epochs"; -1: forever); 0: unknown. A cache only pays when
  // the data is read more than once.
  int64_t epochs = 0;
  // The pipeline's outputs in one epoch when known before an epoch completes (from its ops:
  // pipeline::Pipeline::EpochLength); each stage's epoch is then scaled from its count so far.
  // Used only while the trace has no completed epoch, to size a cache.
  std::optional<double> epoch_outputs;
  // Sampling interval of the trace's series (seconds), for the buffer-size rule.
  double sample_interval = 0.1;
  // Stages whose config says "allow_reorder": true: the tuner may turn their `deterministic`
  // knob off (config::Document's StageSpec::allow_reorder; the trace does not carry it).
  std::set<std::string, std::less<>> reorder_allowed;
  // The config says "allow_rewrite": true: the tuner may replace ops by faster equivalents
  // (decode_jpeg followed by random_resized_crop by decode_random_resized_crop); otherwise it
  // only advises them, in the plan's notes.
  bool allow_rewrite = false;
};

// An op rewrite: stages `first` and `second` (adjacent) become one stage running `op`, named as
// `second`, with `second`'s args.
struct Rewrite {
  std::string first, second, op;
  std::string why;
  double predicted_outputs_per_s = 0;  // with the rewrite and the plan's knobs
  bool applied = false;                // part of the plan (allow_rewrite), else advice only
};

// The knob name of a change that inserts a cache stage after `stage`.
inline constexpr const char* kKnobCache = config::kKnobCache.data();
// The knob name of a change to a stage's ordered output (from/to: 1 = true, 0 = false).
inline constexpr const char* kKnobDeterministic = "deterministic";

// One changed knob.
struct Change {
  std::string stage;
  std::string knob;  // "parallelism", "buffer_size", "deterministic" (1/0) or "cache" (a cache
                     // stage after `stage`)
  int64_t from = 0;
  int64_t to = 0;
  std::string why;     // one plain sentence with its numbers
  std::string effect;  // predicted throughput with this and the earlier changes, in words
  double predicted_outputs_per_s = 0;  // the same, as a number
};

struct Plan {
  std::string pipeline;
  std::string output_noun = "output";
  double predicted_outputs_per_s = 0;  // analyzer::Predict at the chosen knobs (single source)
  double current_outputs_per_s = 0;    // measured in the trace
  double current_predicted_outputs_per_s = 0;  // analyzer::Predict at the traced knobs, same
                                               // resources
  double speedup = 1;                          // predicted / current_predicted
  double milp_outputs_per_s = 0;               // X* of the first solve
  std::vector<Change> changes;
  std::vector<std::string> notes;
  int threads = 0;          // worker threads of the tuned pipeline (consumer's not counted)
  double memory_bytes = 0;  // queued and in-flight elements plus the cache, tuned
  double memory_budget_bytes = 0;
  double cores = 0;                 // the CPU budget planned for
  analyzer::Knobs knobs;            // the chosen knobs, one entry per stage
  analyzer::Prediction prediction;  // Predict at `knobs`
  std::vector<Rewrite> rewrites;    // proposed op rewrites, applied or advised
  // When the tuned pipeline cannot keep pace with the consumer because of the CPU: the cores it
  // would need, and what the tuner predicts with that many (absent otherwise).
  std::optional<double> cores_needed_for_consumer;
  std::optional<double> outputs_per_s_with_cores_needed;
};

// The inputs: the analysis of one pipeline and that pipeline's trace (declared op properties,
// element counts and series for the variability).
// Throws sluice::Error when a budget is infeasible ("memory budget 10 MB is below what the
// pipeline's buffers need: 24 MB") or the solver fails.
Plan Tune(const analyzer::Analysis& analysis, const trace::PipelineTrace& pipeline,
          const TuneOptions& options = {});

// The options a config implies: its epochs, and the stages whose "allow_reorder" is true.
TuneOptions OptionsFromConfig(const config::Document& config);

// `config` with the plan's knobs set (parallelism, buffer_size, deterministic) and its cache stage
// inserted
// ({"name": "cache", "op": "cache"} after the cached stage); every other byte is kept. Throws
// when a stage of the plan is not in the config.
config::Document ApplyPlan(const Plan& plan, const config::Document& config);

// `sluice tune --json`: {"predicted_outputs_per_s", "speedup", "changes": [{"stage", "knob",
// "from", "to", "why", ...}], "config": {...}, ...}.
std::string ToJson(const Plan& plan, const config::Document& tuned);

// Frees the solver's per-thread state (GLPK keeps an environment per thread that solved). Call
// it at the end of a thread other than the main one that called Tune(), or that state leaks.
void ReleaseThreadSolver();

// Parses a memory size: "512M", "4G", "1.5GB", "64k", or bytes ("1000000"); binary multiples
// (K = 1024). Throws sluice::Error on anything else.
int64_t ParseMemorySize(std::string_view text);

}  // namespace sluice::tuner
