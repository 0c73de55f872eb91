// A small job for the tracer's tests: runs a synthetic pipeline the way a training job would,
// untouched by tracing code (tracing comes from SLUICE_TRACE).
//
//   trace_job [--count N] [--step-ms X] [--crash-after-s S] [--no-pipeline]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "sluice/common/clock.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"

int main(int argc, char** argv) {
  long count = -1;
  double step_ms = 1;
  double crash_after = -1;
  bool no_pipeline = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--count" && i + 1 < argc) count = std::strtol(argv[++i], nullptr, 10);
    if (a == "--step-ms" && i + 1 < argc) step_ms = std::strtod(argv[++i], nullptr);
    if (a == "--crash-after-s" && i + 1 < argc) crash_after = std::strtod(argv[++i], nullptr);
    if (a == "--no-pipeline") no_pipeline = true;
  }
  if (no_pipeline) return 3;
  std::string config = R"({"name": "trace_job", "stages": [
      {"name": "src", "op": "generate", "args": {"count": )" +
                       std::to_string(count) + R"(, "bytes": 256}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 200}, "parallelism": 2, "buffer_size": 8},
      {"name": "batch", "op": "batch", "args": {"size": 4}},
      {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]})";
  auto doc = sluice::config::Document::Parse(config, "trace_job.json");
  auto pipe = sluice::pipeline::Pipeline::Create(doc);
  const int64_t start = sluice::MonotonicNanos();
  sluice::pipeline::Element e;
  long outputs = 0;
  while (pipe->Next(&e)) {
    ++outputs;
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(step_ms * 1000)));
    if (crash_after >= 0 && (sluice::MonotonicNanos() - start) * 1e-9 >= crash_after) {
      std::raise(SIGSEGV);
    }
  }
  pipe.reset();
  std::printf("trace_job: %ld outputs\n", outputs);
  return 0;
}
