// Entry point the runtime calls (through dlopen) when a job runs with SLUICE_AUTOTUNE=1 or a
// pipeline is created with PipelineOptions::autotune.
//
// Environment: SLUICE_TRACE (the trace; default sluice-autotune/trace.json),
// SLUICE_TRACE_INTERVAL_MS (default 100), SLUICE_AUTOTUNE_INTERVAL (seconds between decisions,
// default 2), SLUICE_AUTOTUNE_CORES and SLUICE_AUTOTUNE_MEMORY (budgets: a number of cores, and
// 512M / 4G / bytes), SLUICE_TRACE_PROGRESS_FD (progress lines for `sluice profile`).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sluice/autotune/autotune.h"
#include "sluice/autotune/export.h"
#include "sluice/common/log.h"
#include "sluice/tuner/tuner.h"

namespace {

sluice::autotune::Autotuner* g_autotuner = nullptr;  // lives until exit; set once

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x > 0)) {
    sluice::Warn("ignoring {}={} (expected a number > 0)", name, v);
    return fallback;
  }
  return x;
}

void StopAtExit() {
  if (g_autotuner != nullptr) g_autotuner->Stop("completed");
}

}  // namespace

extern "C" SLUICE_AUTOTUNE_EXPORT void sluice_autotune_autostart() {
  if (g_autotuner != nullptr) return;
  sluice::autotune::AutotuneOptions opt;
  const char* path = std::getenv("SLUICE_TRACE");
  opt.tracer.trace_path = path != nullptr && *path != '\0' ? path : "sluice-autotune/trace.json";
  opt.tracer.interval = EnvNumber("SLUICE_TRACE_INTERVAL_MS", 100) / 1000.0;
  opt.tracer.progress_fd = static_cast<int>(EnvNumber("SLUICE_TRACE_PROGRESS_FD", -1));
  opt.tracer.handle_signals = true;
  // `sluice profile --autotune` bounds the trace; tuning goes on, unrecorded, after it.
  if (const double window = EnvNumber("SLUICE_TRACE_SECONDS", 0); window > 0) {
    opt.tracer.window = window;
  }
  opt.interval = EnvNumber("SLUICE_AUTOTUNE_INTERVAL", 2);
  if (const double cores = EnvNumber("SLUICE_AUTOTUNE_CORES", 0); cores > 0) opt.cores = cores;
  try {
    if (const char* memory = std::getenv("SLUICE_AUTOTUNE_MEMORY"); memory && *memory) {
      opt.memory_bytes = sluice::tuner::ParseMemorySize(memory);
    }
    g_autotuner = new sluice::autotune::Autotuner(std::move(opt));
    std::atexit(StopAtExit);
  } catch (const std::exception& e) {
    sluice::Warn("autotuning is off: {}", e.what());
  }
}
