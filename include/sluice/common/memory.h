// Memory the runtime holds beside a pipeline's queues, workers and caches, which the tuner's
// memory budget counts.
#pragma once

#include <cstddef>

namespace sluice {

// The most bytes of freed tensor buffers the runtime keeps for reuse (src/pipeline's tensor
// pool): a process-wide reserve, whatever the pipelines and their knobs.
inline constexpr size_t kTensorPoolIdleBytes = size_t{16} << 20;

}  // namespace sluice
