// The analyzer: operational analysis of one pipeline in a trace (rates, demands, the limiting
// stage or resource, the input-bound verdict) and the what-if model the tuner and the report use.
// The model and every formula: docs/model.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/trace/trace.h"

namespace sluice::analyzer {

// What bounds the throughput: a stage (or the stages sharing its thread), the host's CPU, the
// disk's read bandwidth, the consumer (training step), or memory.
enum class LimitKind { kStage, kCpu, kDisk, kConsumer, kMemory };
// "stage", "cpu", "disk", "consumer", "memory" (the names in `sluice analyze --json`).
const char* ToString(LimitKind kind);

// One upper bound on the outputs per second the job can deliver.
struct Limit {
  LimitKind kind = LimitKind::kStage;
  // The stage to act on (kind stage: the heaviest stage of the server); empty otherwise.
  std::string stage;
  // Every stage whose work this bound covers (a thread's inline stages); empty for cpu, disk and
  // memory, and for a consumer that runs no stage.
  std::vector<std::string> stages;
  double outputs_per_s = 0;
  std::string why;  // one plain sentence with the numbers
};

enum class Verdict { kHighly, kModerately, kNot };
// "highly", "moderately", "not".
const char* ToString(Verdict verdict);

// Whether the training job waits for its input: the consumer's wait fraction over the window
// (>= 20 %: highly, >= 5 %: moderately, else not).
struct InputBound {
  double wait_fraction = 0;  // seconds in Next() / window seconds
  Verdict verdict = Verdict::kNot;
  std::string why;
};

// One stage over the steady-state window. Per-output figures are per item delivered to the
// consumer (a batch when the pipeline batches).
struct StageAnalysis {
  std::string name;
  std::string op;
  bool parallelizable = false;
  // May run on the workers of a parallel map stage below it (map fusion) when inline. The
  // runtime fuses at epoch boundaries only, so the online tuner sets it to the fusion in force.
  bool fusible = true;
  bool holds_gil = false;  // a Python op (the GIL serializes it with every Python thread)
  bool async = false;      // its own worker threads behind a queue (else inline)
  int parallelism = 1;     // knobs in force
  int buffer_size = 0;
  bool ordered = true;  // a parallel stage emits in input order (the `deterministic` knob)
  // The thread(s) it runs on, in words: "its 4 workers", "the consumer's thread", "the worker
  // of 'prefetch'", "the workers of 'decode', one at a time under their input lock".
  std::string runs_on;
  // The async stage whose workers run this inline stage; empty for async stages and for inline
  // stages run by the consumer.
  std::string run_by;
  std::vector<std::string> shares_thread_with;  // other stages on the same thread(s)
  int64_t elements = 0;                         // n_i: elements emitted in the window
  double elements_per_s = 0;
  double routing_ratio = 1;  // outputs per input (filter < 1, batch 1/size, flat map > 1)
  double visit_ratio = 0;    // V_i: elements per delivered output (traffic equations)
  double cpu_demand = 0;     // D_i: CPU seconds per delivered output
  double wall_demand = 0;    // W_i: busy wall seconds per delivered output
  // Seconds per output an ordered parallel stage's workers wait for their turn to emit: its
  // blocked-on-output time while its output queue had room (a full queue is back-pressure).
  double turn_wait_demand = 0;
  double service_seconds = 0;          // S_i = W_i / V_i: busy wall seconds per element it emits
  double utilization = 0;              // U_i = X * W_i / p_i (fraction of its workers' time)
  double capacity_outputs_per_s = 0;   // X_i = p_i / W_i, were it alone on its threads; 0: no work
  double server_outputs_per_s = 0;     // capacity of the thread(s) it shares; 0: no work
  double bytes_per_element = 0;        // bytes_out / elements_out over the trace
  double blocked_input_fraction = 0;   // blocked-on-input seconds / (window * workers)
  double blocked_output_fraction = 0;  // blocked-on-output seconds / (window * workers)
};

// The steady-state window the figures are taken over.
struct Window {
  double start = 0;  // seconds since tracing began
  double end = 0;
  double seconds = 0;
  size_t samples = 0;  // samples in [start, end]
  std::string method;  // how `start` and `end` were chosen, in words
};

// Whether the window supports the figures.
struct Confidence {
  bool ok = true;
  std::string reason;        // why not, in words; empty when ok
  double more_seconds = 0;   // profile this many more seconds (0 when ok)
  double rate_cv = 0;        // coefficient of variation of the output rate over the window
  double rate_stderr = 0;    // standard error of the mean rate, as a fraction of it
  double block_seconds = 0;  // length of the blocks the rate was measured over
};

struct Analysis {
  std::string pipeline;
  std::string output_noun = "output";  // "batch" when the pipeline batches
  Window window;
  int64_t outputs = 0;  // n_0: outputs delivered to the consumer in the window
  double measured_outputs_per_s = 0;
  double predicted_outputs_per_s = 0;  // min of `limits`
  std::vector<StageAnalysis> stages;   // in pipeline order, source first
  std::vector<Limit> limits;           // ascending: the first is the bottleneck
  InputBound input_bound;

  // Resources and the rest of the process, as measured (the what-if starts from these).
  double cores = 0;  // C: the host's (or the --cores override)
  bool cores_overridden = false;
  double other_cpu_demand = 0;  // CPU s per output outside this pipeline's stages and the tracer
  double consumer_step_seconds = 0;   // the consumer's seconds between Next() calls, per output
  double consumer_outputs_per_s = 0;  // 1 / consumer_step_seconds; 0 when the step is 0
  double disk_bytes_per_output = 0;   // 0: unknown or no reads
  std::string disk_bytes_source;      // where that figure comes from, in words
  double disk_mb_per_s = 0;           // B (10^6 bytes/s); 0: not measured
  std::string disk_device;
  int64_t memory_bytes = 0;  // host memory
  int64_t rss_bytes = 0;     // peak resident set size in the window; 0: unknown
  // Mean CPU other processes used in the window (cores). Not subtracted from C: they take what
  // the job leaves idle, and their competition already shows in the job's wall times.
  double host_other_cores = 0;
  // Cores the host would need for the pipeline to keep up with the consumer:
  // X_cons * (sum D_i + other), absent when the consumer takes no time between calls.
  std::optional<double> cores_to_saturate_consumer;
  // Fraction of the window the GPU ran no kernel; absent when no GPU activity was traced.
  std::optional<double> gpu_idle_fraction;
  std::string gpu_status;
  Confidence confidence;
  std::vector<std::string> notes;  // caveats about the figures, in words

  const Limit& Bottleneck() const { return limits.front(); }
};

struct AnalyzeOptions {
  std::string pipeline;          // by name; empty: the one that delivered the most outputs
  std::optional<double> cores;   // plan for this many cores instead of the traced host's
  std::string origin = "trace";  // names the trace in errors ("t.json: pipelines: ...")
};

// Analyzes one pipeline of `trace` over its steady-state window. Throws sluice::Error naming the
// origin and the field when the trace cannot be analyzed (no such pipeline, no samples, no
// outputs in the window, series of the wrong length).
Analysis Analyze(const trace::Trace& trace, const AnalyzeOptions& options = {});

// ---- What-if: the single model the tuner and the report predict with. ----

struct StageKnobs {
  int parallelism = 1;  // > 1 only where the stage is parallelizable
  int buffer_size = 0;  // parallelism 1 and buffer 0: the stage runs inline
  bool ordered = true;  // the `deterministic` knob: parallel workers emit in input order
};

struct Knobs {
  std::vector<StageKnobs> stages;     // one per stage of the analysis, same order
  std::optional<size_t> cache_after;  // a cache after this stage: it and everything upstream
                                      // cost nothing once the cache is filled
};

struct Resources {
  double cores = 0;          // C; 0: no CPU bound
  int64_t memory_bytes = 0;  // 0: no memory bound
  double disk_mb_per_s = 0;  // B; 0: no disk bound
  // The training step per output; absent: as measured.
  std::optional<double> consumer_step_seconds;
};

struct Prediction {
  double outputs_per_s = 0;
  std::vector<Limit> limits;  // ascending; empty when nothing bounds the pipeline
  double memory_bytes = 0;    // projected resident set size
  std::vector<std::string> notes;
};

// The knobs and resources in force when the trace was taken.
Knobs CurrentKnobs(const Analysis& analysis);
Resources CurrentResources(const Analysis& analysis);

// Predicted throughput and limits with other knobs and resources, from the demands measured in
// `analysis` (per-output demands do not change with the knobs). Throws sluice::Error when
// `knobs` does not have one entry per stage or a knob is out of range; parallelism on a stage
// that is not parallelizable is taken as 1, with a note.
Prediction Predict(const Analysis& analysis, const Knobs& knobs, const Resources& resources);

// Predict(...).outputs_per_s with `cores` and `memory_bytes` (0: the traced host's memory), the
// traced disk bandwidth and consumer step.
double PredictThroughput(const Analysis& analysis, const Knobs& knobs, double cores,
                         int64_t memory_bytes = 0);

// The analysis as `sluice analyze --json` prints it (fields in docs/model.md).
std::string ToJson(const Analysis& analysis);

}  // namespace sluice::analyzer
