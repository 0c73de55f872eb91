// A training-job stand-in for the fault-injection tests: runs a synthetic pipeline the way a job
// would (tracing comes from SLUICE_TRACE when `sluice profile` runs it) and, when asked, dies by
// a signal part-way through.
//
//   fault_job [--steps N] [--die-after-s S --signal KILL|SEGV|ABRT] [--step-ms X]
//
// With --steps it consumes N outputs, prints "fault_job: N outputs" and exits 0. With
// --die-after-s it dies S seconds in, or later once the trace SLUICE_TRACE names exists.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "sluice/common/clock.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"

namespace {

[[noreturn]] void Die(const std::string& how) {
  std::fflush(nullptr);
  if (how == "SEGV") {
    // A real invalid access, as a crashing op would make. Not through a null pointer, which
    // UBSan would report before the access; address 16 is never mapped.
    volatile uintptr_t bad = 16;
    *reinterpret_cast<volatile int*>(bad) = 1;
  }
  if (how == "ABRT") std::abort();
  std::raise(SIGKILL);
  std::_Exit(99);  // not reached
}

}  // namespace

int main(int argc, char** argv) {
  double die_after = -1;
  double step_ms = 1;
  long steps = -1;
  std::string how = "KILL";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--die-after-s") die_after = std::strtod(argv[i + 1], nullptr);
    if (a == "--signal") how = argv[i + 1];
    if (a == "--step-ms") step_ms = std::strtod(argv[i + 1], nullptr);
    if (a == "--steps") steps = std::strtol(argv[i + 1], nullptr, 10);
  }
  auto doc = sluice::config::Document::Parse(R"({"name": "fault_job", "stages": [
      {"name": "src", "op": "generate", "args": {"count": -1, "bytes": 128}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 100}, "parallelism": 2, "buffer_size": 8},
      {"name": "batch", "op": "batch", "args": {"size": 4}}]})",
                                             "fault_job.json");
  auto pipe = sluice::pipeline::Pipeline::Create(doc);
  const char* trace = std::getenv("SLUICE_TRACE");
  const int64_t start = sluice::MonotonicNanos();
  sluice::pipeline::Element e;
  long outputs = 0;
  while ((steps < 0 || outputs < steps) && pipe->Next(&e)) {
    ++outputs;
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(step_ms * 1000)));
    // Dies once the time is up and, when traced, the tracer has flushed at least once (a loaded
    // machine may delay the first flush past any fixed time).
    if (die_after >= 0 && (sluice::MonotonicNanos() - start) * 1e-9 >= die_after &&
        (trace == nullptr || std::filesystem::exists(trace))) {
      Die(how);
    }
  }
  pipe.reset();
  std::printf("fault_job: %ld outputs\n", outputs);
  return 0;
}
