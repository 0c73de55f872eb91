// Observers of pipelines' lifetimes: how a sampler (the tracer) learns of pipelines without the
// runtime knowing it exists.
#pragma once

#include "sluice/pipeline/counters.h"
#include "sluice/pipeline/export.h"

namespace sluice::pipeline {

class Pipeline;

class SLUICE_PIPELINE_EXPORT PipelineObserver {
 public:
  virtual ~PipelineObserver() = default;
  // A pipeline was created (it is live, not yet running).
  virtual void OnCreated(const Pipeline& /*pipeline*/) {}
  // A pipeline is being destroyed; `last` holds its final counters (every thread joined).
  virtual void OnDestroyed(const Pipeline& /*pipeline*/, const PipelineSnapshot& /*last*/) {}
};

// Registers `observer` (not owned; it must outlive its registration). Thread-safe. Callbacks run
// on the thread that creates or destroys the pipeline, with no runtime lock held.
SLUICE_PIPELINE_EXPORT void AddPipelineObserver(PipelineObserver* observer);
SLUICE_PIPELINE_EXPORT void RemovePipelineObserver(PipelineObserver* observer);

}  // namespace sluice::pipeline
