// The trace data model (`sluice-trace/1`): what the tracer writes and the analyzer and report
// read. Field by field in docs/trace-format.md. Every struct compares field by field (doubles
// exactly), so that a round-trip test comparing whole traces cannot miss a new field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::trace {

inline constexpr const char* kFormat = "sluice-trace/1";
// The chunked format the tracer appends to (JSON Lines; docs/trace-format.md). The reader reads
// both; a Trace read from either says which in `format`.
inline constexpr const char* kFormatV2 = "sluice-trace/2";

// Read bandwidth of one block device, measured by a short sequential read of files on it.
struct DiskBandwidth {
  std::string device;  // "8:1 /dev/vda1" (major:minor and the mount source when known)
  std::string path;    // a directory on the device whose files were read
  double read_mb_per_s = 0;
  int64_t probe_bytes = 0;
  double probe_seconds = 0;
  std::string method;   // how it was measured, e.g. "sequential read after posix_fadvise(DONTNEED)"
  bool cached = false;  // taken from an earlier measurement of the same device

  bool operator==(const DiskBandwidth&) const = default;
};

struct HostInfo {
  std::string hostname;
  std::string os;  // "Linux 6.1.0 (Debian GNU/Linux 12)"
  std::string cpu_model;
  int cores = 0;  // online CPUs available to the process
  int64_t memory_bytes = 0;
  std::vector<DiskBandwidth> disks;

  bool operator==(const HostInfo&) const = default;
};

struct JobInfo {
  std::vector<std::string> command;  // argv of the traced process
  int pid = 0;
  double start_unix = 0;  // seconds since the epoch when tracing began
  double duration = 0;    // seconds traced
  // True when the trace ends before the job or the tracing window did (crash, kill, signal);
  // `end_reason` says how ("completed", "window elapsed", "signal SIGTERM", "in progress").
  bool cut_short = false;
  std::string end_reason;
  // How the job process ended, when `sluice profile` saw it end: its exit status, or the name of
  // the signal that killed it ("SIGKILL", "SIGSEGV", "SIGABRT"). Unset / empty otherwise.
  std::optional<int> exit_code;
  std::string exit_signal;

  bool operator==(const JobInfo&) const = default;
};

// One stage's totals over the trace, as the runtime counted them.
struct StageTrace {
  std::string name;
  std::string op;
  bool parallelizable = false;  // declared by the op
  bool holds_gil = false;       // a Python op: runs under the interpreter's lock
  bool deterministic = true;    // declared by the op: same outputs every epoch
  bool stateless = true;        // declared by the op
  // From `sluice inspect`, when it ran: "deterministic", "non-deterministic", "unknown".
  std::string inspected;
  int parallelism = 1;  // knobs in force
  int buffer_size = 0;
  bool ordered = true;  // the `deterministic` knob
  bool async = false;
  int64_t elements_in = 0;
  int64_t elements_out = 0;
  int64_t bytes_out = 0;
  double cpu_seconds = 0;
  double busy_seconds = 0;
  double blocked_input_seconds = 0;
  double blocked_output_seconds = 0;
  double queue_mean = 0;
  int64_t queue_max = 0;
  // Software counters of the stage's worker threads (async stages), from /proc.
  int64_t voluntary_switches = 0;
  int64_t involuntary_switches = 0;
  int64_t minor_faults = 0;
  int64_t major_faults = 0;

  bool operator==(const StageTrace&) const = default;
};

struct ConsumerTrace {
  int64_t next_calls = 0;
  double wait_seconds = 0;
  double between_seconds = 0;

  bool operator==(const ConsumerTrace&) const = default;
};

// Cumulative counters of one stage at each sample, column by column (same length as
// Series::t). Rates are differences between samples.
struct StageSeries {
  std::vector<int64_t> elements_out;
  std::vector<double> cpu_seconds;
  std::vector<double> busy_seconds;
  std::vector<double> blocked_input_seconds;
  std::vector<double> blocked_output_seconds;
  std::vector<int64_t> queue_size;  // instantaneous (the mean over a merged bucket)
  // The most elements in the queue over each merged bucket: one value per merged sample of this
  // pipeline (the pipeline's samples before Series::merged.size()); empty when none is merged.
  std::vector<int64_t> queue_max;
  // Busy seconds per worker thread (async stages), workers[w][sample], for per-thread tracks.
  std::vector<int> worker_tids;
  std::vector<std::vector<double>> worker_busy_seconds;

  bool operator==(const StageSeries&) const = default;
};

// One knob a re-tune changed in the running pipeline.
struct RetuneChange {
  std::string stage;
  std::string knob;  // "parallelism", "buffer_size", "deterministic" (1/0), "cache" (0 -> 1: a
                     // cache stage after `stage`, from the next epoch boundary)
  int64_t from = 0;
  int64_t to = 0;
  std::string why;           // the tuner's sentence for it
  std::string when = "now";  // "now", "next_epoch" or "not_applied"
  std::string note;          // why it waits, or was not applied

  bool operator==(const RetuneChange&) const = default;
};

// One re-tune of a running pipeline by the in-process autotuner (sluice::autotune).
struct Retune {
  double t = 0;        // seconds since tracing began
  std::string action;  // "apply", "probe" (outside the model), "rollback", "trial" (hill),
                       // "replan" (a phase change that needs no change: no changes)
  std::string reason;  // what it acts on: the bottleneck, or the measurement
  std::vector<RetuneChange> changes;
  double before_outputs_per_s = 0;      // measured over the window before
  double predicted_outputs_per_s = 0;   // the model's figure, as solved
  double calibrated_outputs_per_s = 0;  // the same, corrected by earlier measured re-tunes
  double measured_outputs_per_s = -1;   // over the window after; -1 until measured
  bool kept = true;                     // false once rolled back

  bool operator==(const Retune&) const = default;
};

// A change in a few words: "decode.parallelism 1->4", or "cache after resize".
std::string ChangeText(const RetuneChange& c);

// One pipeline the process ran while traced.
struct PipelineTrace {
  std::string name;
  std::string config_path;
  std::string config_text;           // the config's full text
  std::vector<std::string> classes;  // names of the source's label indices, if labelled
  int64_t epochs_completed = 0;
  bool finished = false;    // ran to the end of its data
  bool closed = false;      // destroyed while traced (the job stopped consuming it)
  double first_sample = 0;  // seconds since the trace began when it was first seen
  std::vector<StageTrace> stages;
  ConsumerTrace consumer;
  // Series for this pipeline, aligned with Trace::series.t from index `first_index` on.
  size_t first_index = 0;
  std::vector<StageSeries> stage_series;  // one per stage, same order as `stages`
  std::vector<int64_t> consumer_next;     // cumulative Next() calls per sample
  std::vector<double> consumer_wait;      // cumulative seconds in Next() per sample
  // Cumulative seconds between Next() calls (the training step) per sample; empty in traces
  // from before it was recorded.
  std::vector<double> consumer_between;
  // Re-tunes made while it ran, oldest first; empty unless autotuned.
  std::vector<Retune> retunes;

  bool operator==(const PipelineTrace&) const = default;
};

// Process- and host-wide series, one value per sample.
struct Series {
  std::vector<double> t;            // seconds since tracing began
  std::vector<double> process_cpu;  // cumulative process CPU seconds (/proc/self/stat)
  std::vector<double> host_busy;    // host CPU busy fraction over the interval (/proc/stat)
  std::vector<int64_t> rss_bytes;   // resident set size; -1 unknown
  std::vector<int64_t>
      disk_read_bytes;           // cumulative bytes read from storage (/proc/self/io); -1 unknown
  std::vector<double> gpu_busy;  // GPU kernel-busy fraction over the interval; -1 unknown
  // Coarse resolution: the first merged.size() samples are buckets, each merging merged[k]
  // samples (cumulative columns keep the bucket's last value, rss_bytes, host_busy, gpu_busy and
  // queue sizes its mean); the samples after them are at full resolution. Empty: none merged.
  std::vector<int64_t> merged;
  std::vector<int64_t> rss_max;  // the most resident memory over each bucket; -1 unknown

  bool operator==(const Series&) const = default;
};

struct GpuTrace {
  // "ok", "no_device", "no_driver", "no_libcupti", "insufficient_privileges", "not_built",
  // "error": whether GPU activity was recorded and, if not, why.
  std::string status = "not_built";
  std::string reason;  // a sentence a user can act on
  std::string device_name;
  int64_t kernels = 0;
  double kernel_busy_seconds = 0;  // union of kernel intervals
  double busy_fraction = 0;        // kernel_busy_seconds / traced duration
  int64_t h2d_bytes = 0;
  double h2d_seconds = 0;
  int64_t d2h_bytes = 0;
  double d2h_seconds = 0;

  bool operator==(const GpuTrace&) const = default;
};

// What tracing itself cost, so the overhead can be stated.
struct TracerCost {
  double interval = 0.1;  // seconds between samples
  int64_t samples = 0;    // samples taken, merged ones included (len(series.t) when none is merged)
  double cpu_seconds = 0;        // the tracer thread's own CPU time
  double overhead_fraction = 0;  // cpu_seconds / (duration * cores used by the process)
  double warmup_seconds = 0;     // where the steady state begins (seconds since start)
  std::string warmup_method;
  // How the series are bounded (sluice::trace::Compact): the last `full_resolution_seconds` at
  // full resolution, older samples merged into buckets of `bucket_seconds`, at most
  // `max_buckets` of them (adjacent buckets merge in pairs beyond that). 0: never merged.
  double full_resolution_seconds = 0;
  double bucket_seconds = 0;
  int64_t max_buckets = 0;

  bool operator==(const TracerCost&) const = default;
};

struct Trace {
  std::string format = kFormat;
  std::string sluice_version;
  HostInfo host;
  JobInfo job;
  std::vector<PipelineTrace> pipelines;
  Series series;
  GpuTrace gpu;
  TracerCost tracer;

  bool operator==(const Trace&) const = default;
};

}  // namespace sluice::trace
