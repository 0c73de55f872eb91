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
};

// Pulls outputs until the data ends, `seconds` pass (0: no limit) or SIGINT, sleeping
// `consumer_ms` per output like a training step. Shows progress on stderr when `progress`.
ConsumeResult Consume(pipeline::Pipeline& pipe, double seconds, double consumer_ms, bool progress);

}  // namespace sluice::cli
