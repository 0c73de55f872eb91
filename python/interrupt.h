// Ctrl-C while the main thread waits in next(). The thread waits with the GIL released, and
// Python's SIGINT handler only sets a flag that is checked once the wait is over, which could be
// long (a slow pipeline, an element that takes seconds). For the length of the wait a
// SigintWatch puts a handler in front of Python's: on SIGINT it still calls Python's handler
// (KeyboardInterrupt is raised as usual once the GIL comes back) and wakes a watcher thread that
// stops the pipeline, so the wait ends within the pipeline's stop timeout.
#pragma once

#include "sluice/pipeline/pipeline.h"

namespace sluice::python {

class SigintWatch {
 public:
  // Watches only on the thread that imported the module (Python's main thread, where signals
  // are handled) and only while SIGINT has a Python handler; otherwise does nothing.
  explicit SigintWatch(pipeline::Pipeline* pipeline);
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;

  // Records the calling thread as the main thread (called at import).
  static void SetMainThread();

 private:
  bool active_ = false;
};

}  // namespace sluice::python
