// The tuner's model of a pipeline: what the program and the polish know of each stage (demands,
// sizes, caps, queue targets, where a cache may go) and the budgets, built from the analysis and
// the trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "sluice/trace/trace.h"
#include "sluice/tuner/tuner.h"

namespace sluice::tuner::internal {

// A thread planned busier than this starves its neighbours whenever its pace varies (a tandem
// of near-saturated servers loses throughput to blocking), so each server's row keeps this
// share of its workers' time free.
inline constexpr double kServerHeadroom = 0.9;
// Workers that mostly wait (sleep, I/O: CPU under kWaitingShare of their wall time) are planned at
// most half busy: each element's wake-up waits longer for a core as the cores fill, so their wall
// time grows with the load the plan adds, while another waiting worker costs almost no CPU (on 2
// cores the synthetic example's 100 us sleep stage took 6.7 ms per batch on one worker beside
// saturated burn workers, 5.8 ms alone).
inline constexpr double kWaitingHeadroom = 0.5;
inline constexpr double kWaitingShare = 0.3;

struct StageModel {
  double wall = 0;          // W_i, s per output
  double owner_wall = 0;    // W_i plus the turn wait when its workers emit in order
  double cpu = 0;           // D_i, s per output
  double bytes = 0;         // bytes per element
  double worker_bytes = 0;  // what one worker holds: its output and the input it consumes
  bool parallelizable = false;
  bool fusible = false;        // a parallelizable map: runs on the workers of a parallel map stage
                               // directly below it, outside their input lock (map fusion)
  bool fixed_async = false;    // async in the config: it stays async
  int cap = 1;                 // most workers
  int share_cap = 0;           // most ordered workers the cores keep running (0: no limit beyond
                               // cap); applied after the program, by the polish
  double share_cpu_total = 0;  // the CPU demand the share is taken of (with share_cap)
  double rate_cv = -1;         // CV of its per-interval output count; -1 unknown
  int buffer_target = 1;       // b*_i
  bool reorder = false;        // ordered now, and the config allows turning `deterministic` off
  bool too_fast = false;       // per element cheaper than a hand-off: stays inline
  bool cache_ok = false;       // a cache after it may be chosen
  double cache_bytes = 0;
  double cache_elements = 0;
};

struct Model {
  std::vector<StageModel> stages;
  double step = 0;
  double other_cpu = 0;
  double cores = 0;
  double memory_budget = 0;
  // Of the budget, what the runtime holds whatever the knobs (kTensorPoolIdleBytes).
  double reserved = 0;
  double disk_bytes = 0;     // per output
  double disk_bps = 0;       // bytes/s; 0: no bound
  size_t reader = 0;         // the first stage reading storage
  bool input_bound = false;  // the consumer waits and has a step to overlap: keep a prefetch
  double x_max = 0;
  double interval = 0.1;  // s between the series' samples
};

// Work that mostly waits rather than computes.
bool Waiting(double wall, double cpu);

// The busiest a thread is planned while it runs stage `s`: kWaitingHeadroom where the stage mostly
// waits and more workers could share its waits, kServerHeadroom otherwise (a sequential stage
// gets one thread however busy: planning it half busy would only hide the rate it can reach).
double Headroom(const StageModel& s);

// Coefficient of variation of the per-sample increments of `counts` over the last `samples`;
// -1 when there are too few.
double IncrementCv(const std::vector<int64_t>& counts, size_t samples);

// Declared deterministic and not inspected as non-deterministic.
bool Deterministic(const trace::StageTrace& s);

// The element count of one epoch at each stage, from the counts of completed epochs; before the
// first completes, from the counts so far and `epoch_outputs` (the last stage's known count per
// epoch: TuneOptions::epoch_outputs). Empty when neither is known.
std::vector<double> EpochElements(const trace::PipelineTrace& p,
                                  std::optional<double> epoch_outputs = std::nullopt);

// Sets each stage's queue target b*_i for the planned throughput `x` (the buffer rule in
// model.cc).
void SetBufferTargets(Model& m, const analyzer::Analysis& a, double x);

// The model of pipeline `p` from its analysis `a` under the budgets of `o`. Throws sluice::Error
// on a budget that is not positive or an input that is not a finite non-negative number.
Model BuildModel(const analyzer::Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o);

}  // namespace sluice::tuner::internal
