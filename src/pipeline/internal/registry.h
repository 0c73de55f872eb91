// The process-wide registry of live pipelines and their observers (src/pipeline/registry.cc).
#pragma once

#include "sluice/pipeline/counters.h"

namespace sluice::pipeline {
class Pipeline;
}

namespace sluice::pipeline::internal {

// Adds a new pipeline to the live set, loads the tracer when SLUICE_TRACE asks for it (the
// autotuner when SLUICE_AUTOTUNE or `autotune` does), and tells the observers.
void RegisterPipeline(const Pipeline& pipeline, bool autotune);
// Removes a pipeline from the live set and hands its final counters to the observers.
void UnregisterPipeline(const Pipeline& pipeline, const PipelineSnapshot& last);

}  // namespace sluice::pipeline::internal
