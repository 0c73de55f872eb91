// Read-only snapshots of the runtime's always-on per-stage and consumer counters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/pipeline/op.h"

namespace sluice::pipeline {

// One worker thread's share of a stage's counters.
struct WorkerSnapshot {
  int tid = 0;  // kernel thread id while the worker runs; 0 when stopped or inline
  int64_t elements_out = 0;
  double busy_seconds = 0;
  double cpu_seconds = 0;
};

// Totals for one stage since the pipeline started, summed over its workers.
struct StageSnapshot {
  std::string name;
  std::string op;
  OpProperties properties;
  int parallelism = 1;  // worker threads (1 when the stage runs inline)
  int buffer_size = 0;  // capacity of the output queue (0: synchronous, no queue)
  bool deterministic = true;
  bool async = false;  // runs on its own worker threads behind a queue
  // The parallel map stage whose workers run this inline map (map fusion, decided at each epoch
  // boundary); empty when none.
  std::string fused_into;
  int64_t elements_in = 0;
  int64_t elements_out = 0;
  int64_t bytes_out = 0;
  double cpu_seconds = 0;             // thread CPU time spent in the op's work
  double busy_seconds = 0;            // wall time spent in the op's work
  double blocked_input_seconds = 0;   // wall time waiting for an upstream element
  double blocked_output_seconds = 0;  // wall time waiting for room in the output queue
  int64_t queue_size = 0;             // elements in the output queue now
  int64_t queue_max = 0;              // most elements it ever held
  double queue_mean = 0;              // time-weighted mean occupancy since start
  // One entry per worker slot (a single slot for an inline stage).
  std::vector<WorkerSnapshot> workers;
};

// The training loop's view: how often it asked and how long it waited.
struct ConsumerSnapshot {
  int64_t next_calls = 0;      // calls to Pipeline::Next that returned an element
  double wait_seconds = 0;     // wall time spent inside Pipeline::Next
  double between_seconds = 0;  // wall time between returning from Next and the following call
};

struct PipelineSnapshot {
  std::string name;
  double seconds = 0;  // wall time since the pipeline started running
  int64_t epoch = 0;   // epoch being produced
  bool finished = false;
  std::vector<StageSnapshot> stages;
  ConsumerSnapshot consumer;
};

}  // namespace sluice::pipeline
