// The tracer: samples every live pipeline's counters, the process, the host and the GPU at a
// fixed interval and appends them to a sluice-trace/2 file, flushed periodically so that a job
// that dies leaves a readable trace; its memory stays bounded however long the job runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/trace/trace.h"
#include "sluice/tracer/export.h"

namespace sluice::tracer {

struct TracerOptions {
  std::filesystem::path trace_path;   // the sluice-trace/1 file
  std::filesystem::path chrome_path;  // a Chrome trace-event file beside it, when not empty
  double interval = 0.1;              // seconds between samples
  double window = 0;                  // seconds to trace; 0: until Stop()
  double flush_every = 1.0;           // seconds between periodic writes (each appends what is new)
  // Bounded memory (docs/trace-format.md): the last `full_resolution_seconds` are kept at full
  // resolution, older samples merged into buckets of `bucket_seconds`, at most `max_buckets` of
  // them (pairs of the oldest merge beyond that). bucket_seconds 0: every sample kept.
  double full_resolution_seconds = 600;
  double bucket_seconds = 10;
  int64_t max_buckets = 1024;
  bool handle_signals = false;  // on SIGINT/SIGTERM: write the trace, then re-raise
  int progress_fd = -1;         // when >= 0, progress lines are written here
  bool measure_disks = true;    // probe the bandwidth of the pipelines' data devices
  std::filesystem::path
      cache_dir;  // where disk measurements are remembered (default: ~/.cache/sluice)
  // Called on the tracer's thread once the window has elapsed and the trace is written.
  std::function<void()> on_window_end;
};

class TracerImpl;

class SLUICE_TRACER_EXPORT Tracer {
 public:
  // Starts sampling on a thread of its own. Throws sluice::Error when the trace's directory
  // cannot be written.
  explicit Tracer(TracerOptions options);
  ~Tracer();  // Stop("completed") unless stopped already
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Takes a last sample and writes the final trace with `end_reason`; idempotent.
  void Stop(const std::string& end_reason);
  // A copy of the trace as it stands: the recent samples at full resolution, older ones merged.
  trace::Trace Current() const;
  // Replaces the re-tunes recorded for the pipeline with this id (Pipeline::id()); they are in
  // the next periodic write, so that a job killed later leaves them in its trace. Only the first
  // kKeptRetunes / 2 and the last kKeptRetunes / 2 are kept (a job that re-tuned more often
  // than that loses the ones between), so that the trace stays bounded for any duration.
  void SetRetunes(uint64_t pipeline_id, std::vector<trace::Retune> retunes);
  static constexpr size_t kKeptRetunes = 512;

 private:
  std::unique_ptr<TracerImpl> impl_;
};

// The tracer's warm-up cut: trace::FindSteadyStart, in seconds, 0 when it finds no steady state
// (the series is too short or the second half delivers nothing).
SLUICE_TRACER_EXPORT double FindWarmup(const std::vector<double>& t,
                                       const std::vector<int64_t>& counts, size_t window = 5,
                                       double tolerance = 0.2);

}  // namespace sluice::tracer
