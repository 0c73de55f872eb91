// The online tuner's decisions, apart from its thread: what of a plan a running pipeline can
// take, when a trial is kept, how the model is calibrated, and the analysis of one window.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/trace.h"
#include "sluice/tuner/tuner.h"

namespace sluice::autotune::internal {

// The changes of `plan` a running pipeline can take now, in the plan's order; a cache insertion
// is left out (the loop plans one on its own: CacheToInsert).
std::vector<pipeline::KnobChange> LiveChanges(const tuner::Plan& plan);

// The relative standard error of the rate over [from, end] of pipeline `p` in `trace`: the
// window's outputs split into `parts` spans of equal time, the standard deviation of their rates
// over the mean, divided by the square root of `parts`. 0 with fewer than two samples per span.
double WindowNoise(const trace::Trace& trace, const trace::PipelineTrace& p, double from,
                   int parts = 4);

// The fraction by which two windows' rates must differ to differ beyond their noise: two
// standard errors of the difference (`se_a`, `se_b`: each window's WindowNoise), never less than
// `floor`.
double NoiseBetween(double se_a, double se_b, double floor);

// A trial that measured `measured` after `before` is kept unless it lost more than the noise.
bool KeepTrial(double before, double measured, double noise);

// The model's correction factor (measured over predicted), updated with one more measurement:
// the mean of the old factor and the new ratio, so that one noisy window does not swing it.
double Calibrate(double factor, double predicted, double measured);

// Analyzes pipeline `pipeline` of `trace` over [from, end]: the trace's warm-up cut is moved
// to `from`. Throws sluice::Error when the window cannot be analyzed.
analyzer::Analysis AnalyzeWindow(trace::Trace trace, double from, const std::string& pipeline,
                                 std::optional<double> cores);

// The re-tune record of an applied plan: its changes as Apply took them, with the tuner's
// reasons.
trace::Retune RecordApply(double t, const std::string& reason, const tuner::Plan& plan,
                          const std::vector<pipeline::AppliedChange>& applied, double before,
                          double calibration);

// The re-tune record of a phase change that needs no change: re-planned, and the best plan
// (`plan`) promises no more than `min_gain` over the current config, so nothing is changed.
// `reason` says why it re-planned (the rate moved, and what bounds it now).
trace::Retune RecordReplan(double t, const std::string& reason, const tuner::Plan& plan,
                           double before, double calibration, double min_gain);

// Epochs a cache inserted at the next epoch boundary would replay, in a job of `epochs` (-1:
// endless) whose epoch `epoch` runs now (counted from 0); -1 for endless.
int64_t EpochsToReplay(int64_t epochs, int64_t epoch);

// The cache change of `with_cache` (planned for the epochs left) when it promises more than
// `min_gain` over `without` (the plan for one pass); nullopt otherwise.
std::optional<tuner::Change> CacheToInsert(const tuner::Plan& with_cache,
                                           const tuner::Plan& without, double min_gain);

// The re-tune record of a cache insertion that waits for the next epoch boundary.
trace::Retune RecordCache(double t, const tuner::Change& cache, const tuner::Plan& with_cache,
                          const pipeline::AppliedChange& applied, double before,
                          double calibration);

// What keeps the stages above a cache inserted after stage `cache_after` on workers while it
// records. When that stage runs inline on the workers of a parallel stage below it (map fusion),
// the cache between them ends the fusion there: the stage and the maps above it would run on one
// thread, under the cache, for the whole epoch it records. The changes give the stage the
// parallelism and buffer of the stage whose workers ran it (its own workers then run the maps
// above it); empty when it is async already, cannot have workers, or is not run by such a stage.
// With `planned` (changes applied after the window `a` measured), the stage that will run it is
// found from the knobs after them, by the runtime's fusion rule: the first stage below it that
// is not an inline parallelizable map, when that stage has workers.
struct RecordingWorkers {
  std::vector<pipeline::KnobChange> changes;
  std::string why;
};
RecordingWorkers WorkersForRecording(const analyzer::Analysis& a, const std::string& cache_after,
                                     const std::vector<pipeline::KnobChange>& planned = {});

// How the trace names when a change took effect: "now", "next_epoch" or "not_applied".
std::string WhenText(pipeline::AppliedChange::When when);

// A trial outside the model. When the model's bound at the knobs in force is more than `gap`
// above the measured rate, something it does not model limits the pipeline (placement costs:
// an op's CPU per element can depend on the thread it runs on). Then, when no plan promises a
// gain, the loop tries one more worker for the stage with the tightest stage bound that runs on
// one thread, may have workers, and is not in `tried`; kept only if the rate rises beyond the
// noise. nullopt when the gap is smaller or no stage qualifies. The bound is first scaled by
// `calibration` (measured over predicted, learned from this run's trials): a gap the size of the
// model's own measured error is not evidence of something it does not model.
struct Probe {
  pipeline::KnobChange change;
  std::string reason;
};
std::optional<Probe> ProbeChange(const analyzer::Analysis& a, const std::set<std::string>& tried,
                                 double gap, double calibration = 1);

// A second trial outside the model: the queues a plan grows without a gain it can predict. The
// tuner sizes a queue for the variability of its stage's output at the planned rate, but the
// model gives a hand-off no cost, so a larger queue never raises the predicted rate and a plan
// that mostly resizes queues never clears the minimum gain. The plan's buffer_size changes that
// at least double a queue (from 0: to 2 or more) are tried together, kept unless the rate falls
// beyond the noise (KeepTrial): a queue holds only memory, within the budget the plan keeps, and
// a gain of a tenth is within one window's noise. nullopt when the plan has none. The loop tries
// it only where a phase change at least doubled the rate (from `before` to `rate`): queues sized
// for the old rate are then too small for the new (a cache's replay).
struct QueueTrial {
  std::vector<pipeline::KnobChange> changes;
  std::string reason;
};
std::optional<QueueTrial> QueueGrowth(const tuner::Plan& plan, double before, double rate,
                                      double min_gain);

// A third trial outside the model, after the worker probes (ProbeChange): when the model's
// bound is more than `gap` above the measured rate but no stage is left for a worker probe, the
// queues `plan` at least doubles (as QueueGrowth picks them) are tried together, once per phase,
// kept only if the rate rises beyond the noise. A producer that finds its queue full waits for
// its consumer's pop, a wake-up per hand-off that the model does not price: on
// examples/text_pipeline.json, with `tokenize` at two workers, the last queue (shipped at 1)
// taken to 2 measured +12 % in three paired 20 s runs. nullopt when the gap is smaller or the plan
// grows no queue that much.
std::optional<QueueTrial> QueueProbe(const analyzer::Analysis& a, const tuner::Plan& plan,
                                     double gap, double calibration = 1);

// The model's bound this far above the measured rate (at least; three times the noise floor or
// the window's standard error if more) calls for a trial outside the model (ProbeChange).
inline constexpr double kProbeGap = 0.15;
// A phase change whose rate rose this many times calls for the plan's queue growth (QueueGrowth).
inline constexpr double kQueueRise = 2;

// What a phase change from `before` to `rate` (outputs/s) opens, when no plan promises a gain:
// - queues: the rate at least doubled (kQueueRise), so queues sized for the old one are too small
//   for it: try the plan's queue growth (QueueGrowth), in this window only;
// - reprobe: the rate moved by more than kProbeGap, as far as the gap that calls for a probe, so
//   what a probe undid in the old phase may be tried again; a smaller move past the noise would
//   re-try it on the noise (a bursty text rate swings by 5-8 % with nothing changed).
struct PhaseMove {
  bool queues = false;
  bool reprobe = false;
};
PhaseMove AfterPhaseChange(double before, double rate);

// A probe's trial is kept only if it measured more than the noise above the rate before it.
bool KeepProbe(double before, double measured, double noise);

// A probe whose first window measured a gain within the noise (above the rate before it, by no
// more than `noise`) is inconclusive rather than lost: the loop measures it once more, over both
// windows together (a window twice as long has a smaller standard error, so a smaller noise),
// before it keeps or undoes it. A one-window trial of a low-rate pipeline (20 batches/s) reads
// a 20 % gain as 6 % often enough to undo the worker that gives it.
bool MeasureProbeAgain(double before, double measured, double noise);

// The changes that undo `applied` (those that took effect or wait for the epoch boundary).
std::vector<pipeline::KnobChange> Undo(const std::vector<pipeline::AppliedChange>& applied);

}  // namespace sluice::autotune::internal
