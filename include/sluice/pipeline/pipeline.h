// A running pipeline built from a config: the consumer calls Next() for each output.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/config/document.h"
#include "sluice/pipeline/counters.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/export.h"

namespace sluice::pipeline {

struct PipelineOptions {
  // Overrides the config's epochs when set (-1 repeats forever).
  std::optional<int64_t> epochs;
  // How long Stop() waits for worker threads to leave their op. A worker still inside an op
  // after that (an op that hangs) is left running: Stop() returns, names the stage in
  // StuckStages() and on stderr, and the pipeline's state is kept alive until the process exits
  // so that the worker can never touch freed memory.
  double stop_timeout_seconds = 5;
  // The number the first epoch runs as: shuffles and random ops are seeded by the epoch number,
  // so a job that builds one pipeline per epoch (first_epoch = n, epochs = 1) sees the same
  // data as one pipeline over every epoch.
  int64_t first_epoch = 0;
  // Page-locks batch buffers through the CUDA runtime (loaded with dlopen) so that copies to
  // the GPU need no staging and can overlap compute. Without a CUDA device: a warning, once per
  // process, and ordinary memory.
  bool pin_memory = false;
  // Tunes the running pipeline's knobs online (sluice::autotune, loaded with dlopen like the
  // tracer; the same as SLUICE_AUTOTUNE=1 in the environment). It traces the process to
  // SLUICE_TRACE, or sluice-autotune/trace.json, and writes tuned.json beside it at exit.
  bool autotune = false;
};

// One knob of a running pipeline to change (Pipeline::Apply).
struct KnobChange {
  std::string stage;
  std::string knob;  // "parallelism", "buffer_size" or "deterministic" (1: ordered, 0: not)
  int64_t to = 0;
};

// What Pipeline::Apply did with one change.
struct AppliedChange {
  enum class When {
    kNow,        // in effect (workers started or retiring, the queue resized or draining)
    kNextEpoch,  // waits for the next epoch boundary; `note` says why
    kNotApplied  // `note` says why (a decrease before it did not settle in time)
  };
  std::string stage;
  std::string knob;
  int64_t from = 0;
  int64_t to = 0;
  When when = When::kNow;
  std::string note;
};

class PipelineImpl;

class SLUICE_PIPELINE_EXPORT Pipeline {
 public:
  // Builds every stage's op and checks every knob against its op. Throws sluice::Error naming
  // the file, stage and key. Threads start on the first Next().
  static std::unique_ptr<Pipeline> Create(const config::Document& config,
                                          const PipelineOptions& options = {});
  ~Pipeline();  // stops the pipeline and joins every thread
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Delivers the next output; false once every epoch is done. An op's failure is rethrown as
  // sluice::Error prefixed with the stage's name; later calls rethrow it again.
  bool Next(Element* out);
  // Changes knobs while a consumer iterates, from any thread. A stage's workers start at once or
  // leave at an element boundary; a queue grows at once or shrinks by draining; a stage turns
  // inline or asynchronous (or its ordering changes) at the element boundary of the thread that
  // pulls it. No element is lost, repeated or, in an ordered stage, reordered. Decreases are
  // made first and, before any increase, waited for (up to `settle_seconds`) so that the
  // pipeline never holds more threads or queued elements than the old or the new knobs allow
  // (a stage turning inline settles when its consumer next pulls it: a caller that mixes
  // decreases and increases from the consumer's own thread waits out `settle_seconds`).
  // A change to a stage fused into another's workers waits for the next epoch. Throws
  // sluice::Error, changing nothing, on an unknown stage or knob or a value the op refuses.
  std::vector<AppliedChange> Apply(const std::vector<KnobChange>& changes,
                                   double settle_seconds = 5);
  // Stops producing and joins every thread; Next() then returns false. Safe to call twice and
  // from any thread (it waits for a consumer inside Next(), e.g. running an inline op, to leave).
  // Returns within PipelineOptions::stop_timeout_seconds even when an op hangs (StuckStages()).
  void Stop();
  // A consistent-enough copy of every counter, safe to call from any thread at any time.
  PipelineSnapshot Snapshot() const;
  const std::string& name() const;
  // Threads this pipeline runs now (not counting the caller's).
  int RunningThreads() const;
  // Stages whose threads Stop() left running because they did not leave their op within
  // PipelineOptions::stop_timeout_seconds ("consumer" when the caller of Next() was stuck in an
  // inline stage); empty when every thread was joined.
  std::vector<std::string> StuckStages() const;
  // Unique within the process, never reused.
  uint64_t id() const;
  // The config it was built from: its path as given, and its full text.
  const std::string& config_path() const;
  const std::string& config_text() const;
  // Outputs per epoch, when every stage knows its count up front (nullopt behind a filter).
  std::optional<int64_t> EpochLength() const;
  // Outputs over all the pipeline's epochs; nullopt when unknown or endless.
  std::optional<int64_t> Length() const;
  // The class names the source's labels index (list_files with label_from, read_manifest).
  std::vector<std::string> ClassNames() const;

 private:
  explicit Pipeline(std::unique_ptr<PipelineImpl> impl);
  std::unique_ptr<PipelineImpl> impl_;
};

// Pipeline::Apply on the live pipeline with this id, holding the registry's lock so that it is
// not destroyed meanwhile; nullopt when no such pipeline is alive.
SLUICE_PIPELINE_EXPORT std::optional<std::vector<AppliedChange>> ApplyToLivePipeline(
    uint64_t id, const std::vector<KnobChange>& changes, double settle_seconds);

// Pipelines alive in this process, for samplers (the tracer) that observe without owning.
// `fn` runs under the registry's lock: keep it short and do not create or destroy pipelines.
SLUICE_PIPELINE_EXPORT void ForEachLivePipeline(const std::function<void(const Pipeline&)>& fn);

}  // namespace sluice::pipeline
