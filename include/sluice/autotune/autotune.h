// The online tuner: in a running job, every interval it reads the tracer's window of live
// counters, analyzes it, plans with the tuner's program and applies a plan that promises a real
// gain through Pipeline::Apply; it then measures the next window and keeps the change or rolls
// it back. Every re-tune is recorded in the trace with its reason, prediction and measurement.
// How it decides: docs/autotune.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/autotune/export.h"
#include "sluice/trace/trace.h"
#include "sluice/tracer/tracer.h"

namespace sluice::autotune {

// How the tuner decides: with the model (analysis, the tuner's program, one measured trial per
// plan), or by the hill-climbing baseline (tf.data AUTOTUNE's procedure: one more worker or
// queue slot per measured window, kept when it gains 3 %), for comparison; or not at all
// (kObserve: traced and measured as the others, nothing changed), the baseline of a config run
// as it is.
enum class Policy { kModel, kHillClimb, kObserve };

struct AutotuneOptions {
  Policy policy = Policy::kModel;
  double interval = 2.0;   // seconds between decisions (and the length of a measured window)
  double min_gain = 0.05;  // a plan must promise more than this to be applied
  // Rates within this fraction are the same (keeping a change, noticing a phase change).
  double noise = 0.04;
  std::optional<double> cores;          // CPU budget; absent: the host's cores
  std::optional<int64_t> memory_bytes;  // absent: half the memory the host has available
  std::string pipeline;                 // the pipeline to tune; empty: the busiest
  tracer::TracerOptions tracer;         // the trace it records (trace_path is required)
  // Where the last config goes on Stop(); empty: tuned.json beside the trace.
  std::filesystem::path tuned_path;
};

// What the tuner did over a run.
struct Summary {
  std::vector<trace::Retune> retunes;
  double final_outputs_per_s = 0;  // over the run's last 5 s
  // From the start of the run until the rate (over windows as long as the final one, 5 s)
  // last rose to within 5 % of the final rate and stayed there.
  double converged_after_s = 0;
  // |predicted - measured| / measured of each measured re-tune: the model as solved, and with
  // the calibration learned from the re-tunes before it.
  std::vector<double> model_error;
  std::vector<double> calibrated_error;
  std::string tuned_path;        // the config written, empty when none could be
  double tuner_cpu_seconds = 0;  // the tuning thread's own CPU (the tracer's is in the trace)
};

class AutotunerImpl;

class SLUICE_AUTOTUNE_EXPORT Autotuner {
 public:
  // Starts the tracer and the tuning thread. Throws sluice::Error when the trace cannot be
  // written.
  explicit Autotuner(AutotuneOptions options);
  ~Autotuner();  // Stop() unless stopped
  Autotuner(const Autotuner&) = delete;
  Autotuner& operator=(const Autotuner&) = delete;

  // Stops tuning, writes the final trace (with every re-tune) and the last config; idempotent.
  Summary Stop(const std::string& reason = "completed");

 private:
  std::unique_ptr<AutotunerImpl> impl_;
};

// The run's figures from a trace: the rate over its last `final_seconds`, and when it
// converged (see Summary). Zero for a pipeline without outputs.
SLUICE_AUTOTUNE_EXPORT void Converge(const trace::Trace& trace, const std::string& pipeline,
                                     Summary& summary, double final_seconds = 5);

// Writes the config of `pipeline` (empty: the busiest) with the knobs it last ran with, as the
// trace records them, to `out` (atomically; an existing file is kept as OUT.bak). False when
// the trace carries no config for it; throws sluice::Error when it cannot be written.
SLUICE_AUTOTUNE_EXPORT bool WriteLastConfig(const trace::Trace& trace, const std::string& pipeline,
                                            const std::filesystem::path& out);

}  // namespace sluice::autotune
