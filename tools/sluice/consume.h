// The simulated training loop shared by `sluice run` and in-process `sluice profile`.
#pragma once

#include <cstdint>

#include "sluice/pipeline/pipeline.h"

namespace sluice::cli {

struct ConsumeResult {
  int64_t outputs = 0;
  double seconds = 0;
  bool interrupted = false;  // stopped by Ctrl-C
  bool ended = false;        // the pipeline ran out of data
  // The steady window after the warm-up (when one was asked for and passed): outputs and
  // seconds counted from the first output delivered after it.
  int64_t steady_outputs = 0;
  double steady_seconds = 0;
};

// Pulls outputs until the data ends, `seconds` pass (0: no limit) or SIGINT, sleeping
// `consumer_ms` per output like a training step. Shows progress on stderr when `progress`.
// `warmup_seconds` > 0 also measures the steady window that starts after it.
ConsumeResult Consume(pipeline::Pipeline& pipe, double seconds, double consumer_ms, bool progress,
                      double warmup_seconds = 0);

}  // namespace sluice::cli
