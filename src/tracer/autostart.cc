// Entry point the runtime calls (through dlopen) when a job runs with SLUICE_TRACE set.
//
// Environment: SLUICE_TRACE (trace path, required), SLUICE_TRACE_INTERVAL_MS (default 100),
// SLUICE_TRACE_SECONDS (stop tracing after this long; default: at exit), SLUICE_TRACE_CHROME
// (also write a Chrome trace there), SLUICE_TRACE_PROGRESS_FD (progress lines for
// `sluice profile`), SLUICE_TRACE_FLUSH_SECONDS (between appends to the file, default 1),
// SLUICE_TRACE_FULL_RESOLUTION_SECONDS (default 600) and SLUICE_TRACE_BUCKET_SECONDS (default 10):
// how the series are bounded (docs/trace-format.md).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sluice/common/log.h"
#include "sluice/tracer/export.h"
#include "sluice/tracer/tracer.h"

namespace {

sluice::tracer::Tracer* g_tracer = nullptr;  // lives until exit; set once

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || x < 0) {
    sluice::Warn("ignoring {}={} (expected a number >= 0)", name, v);
    return fallback;
  }
  return x;
}

void StopAtExit() {
  if (g_tracer != nullptr) g_tracer->Stop("completed");
}

}  // namespace

// Exported: the runtime finds it with dlsym.
extern "C" SLUICE_TRACER_EXPORT void sluice_tracer_autostart() {
  if (g_tracer != nullptr) return;
  const char* path = std::getenv("SLUICE_TRACE");
  if (path == nullptr || *path == '\0') return;
  sluice::tracer::TracerOptions opt;
  opt.trace_path = path;
  if (const char* chrome = std::getenv("SLUICE_TRACE_CHROME"); chrome != nullptr) {
    opt.chrome_path = chrome;
  }
  opt.interval = EnvNumber("SLUICE_TRACE_INTERVAL_MS", 100) / 1000.0;
  if (opt.interval < 0.001) opt.interval = 0.001;
  opt.window = EnvNumber("SLUICE_TRACE_SECONDS", 0);
  opt.flush_every = std::max(0.001, EnvNumber("SLUICE_TRACE_FLUSH_SECONDS", opt.flush_every));
  opt.full_resolution_seconds =
      EnvNumber("SLUICE_TRACE_FULL_RESOLUTION_SECONDS", opt.full_resolution_seconds);
  opt.bucket_seconds = EnvNumber("SLUICE_TRACE_BUCKET_SECONDS", opt.bucket_seconds);
  opt.progress_fd = static_cast<int>(EnvNumber("SLUICE_TRACE_PROGRESS_FD", -1));
  opt.handle_signals = true;
  try {
    g_tracer = new sluice::tracer::Tracer(std::move(opt));
    std::atexit(StopAtExit);
  } catch (const std::exception& e) {
    sluice::Warn("tracing is off: {}", e.what());
  }
}
