// The tracer's sampling thread: counters of every live pipeline, process and host figures, GPU
// activity; old samples merged into buckets as they age, and periodic appends of what is new to
// the trace file so that it survives the job.
#include "sluice/tracer/tracer.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/thread_annotations.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/files.h"
#include "sluice/common/log.h"
#include "sluice/pipeline/observer.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/chunked.h"
#include "sluice/trace/compact.h"
#include "sluice/trace/io.h"
#include "sluice/trace/steady.h"
#include "sluice/tracer/gpu_monitor.h"
#include "sluice/tracer/progress.h"
#include "tracer/disk_probe.h"
#include "tracer/proc_stats.h"

namespace sluice::tracer {
namespace {

constexpr const char* kVersion = SLUICE_VERSION;  // from CMake's project()

// The write end of the running tracer's wake-up pipe, for signal handlers (async-signal-safe).
std::atomic<int> g_signal_fd{-1};
struct sigaction g_previous_int {};
struct sigaction g_previous_term {};

void OnSignal(int sig) {
  int fd = g_signal_fd.load();
  if (fd >= 0) {
    auto byte = static_cast<unsigned char>(sig);
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
}

std::string SignalName(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return fmt::format("signal {}", sig);
  }
}

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Per-thread software counters of a stage's workers, summed over every worker thread seen.
struct ThreadTotals {
  std::map<int, internal::ThreadCounters> last;  // by tid
  trace::StageTrace Sum(trace::StageTrace st) const {
    st.voluntary_switches = st.involuntary_switches = st.minor_faults = st.major_faults = 0;
    for (const auto& [tid, c] : last) {
      st.voluntary_switches += c.voluntary_switches;
      st.involuntary_switches += c.involuntary_switches;
      st.minor_faults += c.minor_faults;
      st.major_faults += c.major_faults;
    }
    return st;
  }
};

// What the tracer keeps about one pipeline besides its PipelineTrace.
struct PipelineState {
  uint64_t id = 0;
  size_t index = 0;  // into Trace::pipelines
  bool alive = true;
  pipeline::PipelineSnapshot last;
  std::vector<ThreadTotals> threads;  // one per stage
};

trace::StageTrace ToStageTrace(const pipeline::StageSnapshot& s) {
  trace::StageTrace t;
  t.name = s.name;
  t.op = s.op;
  t.parallelizable = s.properties.parallelizable;
  t.holds_gil = s.properties.holds_gil;
  t.deterministic = s.properties.deterministic;
  t.stateless = s.properties.stateless;
  t.parallelism = s.parallelism;
  t.buffer_size = s.buffer_size;
  t.ordered = s.deterministic;
  t.async = s.async;
  t.elements_in = s.elements_in;
  t.elements_out = s.elements_out;
  t.bytes_out = s.bytes_out;
  t.cpu_seconds = s.cpu_seconds;
  t.busy_seconds = s.busy_seconds;
  t.blocked_input_seconds = s.blocked_input_seconds;
  t.blocked_output_seconds = s.blocked_output_seconds;
  t.queue_mean = s.queue_mean;
  t.queue_max = s.queue_max;
  return t;
}

}  // namespace

double FindWarmup(const std::vector<double>& t, const std::vector<int64_t>& counts, size_t window,
                  double tolerance) {
  return trace::FindSteadyStart(t, counts, window, tolerance).value_or(0.0);
}

class TracerImpl final : public pipeline::PipelineObserver {
 public:
  explicit TracerImpl(TracerOptions options) : opt_(std::move(options)), writer_(opt_.trace_path) {
    if (opt_.cache_dir.empty()) opt_.cache_dir = internal::DefaultCacheDir();
    std::filesystem::path dir = opt_.trace_path.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK) != 0) {
      Fail("cannot write the trace to {}: {}", opt_.trace_path.string(),
           ec ? ec.message() : std::strerror(errno));
    }
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) Fail("tracer: pipe: {}", std::strerror(errno));
    trace_.sluice_version = kVersion;
    trace_.host = internal::ReadHostInfo();
    trace_.job.command = internal::ReadCommandLine();
    trace_.job.pid = ::getpid();
    trace_.job.start_unix = NowUnix();
    trace_.format = trace::kFormatV2;
    trace_.tracer.interval = opt_.interval;
    trace_.tracer.full_resolution_seconds = opt_.full_resolution_seconds;
    trace_.tracer.bucket_seconds = opt_.bucket_seconds;
    trace_.tracer.max_buckets = opt_.max_buckets;
    start_ns_ = MonotonicNanos();
    gpu_ = StartGpuMonitor();
    if (opt_.handle_signals) InstallSignalHandlers();
    pipeline::AddPipelineObserver(this);
    thread_ = std::thread([this] { Run(); });
  }

  ~TracerImpl() override {
    Stop("completed");
    pipeline::RemovePipelineObserver(this);
    if (probe_.joinable()) probe_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

  void Stop(const std::string& reason) {
    {
      MutexLock lock(mu_);
      if (stop_reason_.empty()) stop_reason_ = reason;
    }
    unsigned char zero = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &zero, 1);
    if (thread_.joinable()) thread_.join();
  }

  trace::Trace Current() const {
    MutexLock lock(mu_);
    return trace_;
  }

  void SetRetunes(uint64_t id, std::vector<trace::Retune> retunes) {
    constexpr size_t kHalf = Tracer::kKeptRetunes / 2;
    if (retunes.size() > 2 * kHalf) {
      retunes.erase(retunes.begin() + kHalf, retunes.end() - kHalf);
    }
    MutexLock lock(mu_);
    for (const PipelineState& s : states_) {
      if (s.id == id) trace_.pipelines[s.index].retunes = std::move(retunes);
    }
  }

  void OnDestroyed(const pipeline::Pipeline& p, const pipeline::PipelineSnapshot& last) override {
    MutexLock lock(mu_);
    for (PipelineState& s : states_) {
      if (s.id == p.id()) {
        s.alive = false;
        AlignStages(s, last);
        s.last = last;
        UpdateTotals(s);
      }
    }
    // A pipeline created and destroyed between two samples is still recorded.
    if (std::none_of(states_.begin(), states_.end(),
                     [&](const auto& s) { return s.id == p.id(); })) {
      AddPipeline(p.id(), p.config_path(), p.config_text(), last, trace_.series.t.size());
      states_.back().alive = false;
    }
  }

 private:
  void InstallSignalHandlers() {
    g_signal_fd.store(wake_[1]);
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &g_previous_int);
    sigaction(SIGTERM, &sa, &g_previous_term);
    handlers_installed_ = true;
  }

  void RestoreSignalHandlers() {
    if (!handlers_installed_) return;
    sigaction(SIGINT, &g_previous_int, nullptr);
    sigaction(SIGTERM, &g_previous_term, nullptr);
    g_signal_fd.store(-1);
    handlers_installed_ = false;
  }

  void Run() {
    pthread_setname_np(pthread_self(), "sluice-tracer");
    // Signals are for the job's threads; a closed progress pipe must give EPIPE, not kill.
    sigset_t block;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, nullptr);
    const auto interval_ns = static_cast<int64_t>(opt_.interval * 1e9);
    int64_t next_sample = MonotonicNanos();
    int64_t next_flush = next_sample + static_cast<int64_t>(opt_.flush_every * 1e9);
    std::string reason;
    int signal = 0;
    for (;;) {
      int64_t now = MonotonicNanos();
      if (now >= next_sample) {
        Sample(now);
        MaybeStartProbe();
        next_sample += interval_ns;
        if (next_sample < now) next_sample = now + interval_ns;  // fell behind: skip, do not burst
      }
      if (opt_.window > 0 && (now - start_ns_) * 1e-9 >= opt_.window) {
        reason = "window elapsed";
        break;
      }
      if (now >= next_flush) {
        int64_t t0 = MonotonicNanos();
        Write(/*final=*/false, "in progress");
        // Each write appends only what is new; should one ever take long, keep writes a small
        // share of the tracer's time.
        int64_t took = MonotonicNanos() - t0;
        next_flush =
            MonotonicNanos() + std::max(static_cast<int64_t>(opt_.flush_every * 1e9), 20 * took);
      }
      pollfd pfd{wake_[0], POLLIN, 0};
      int timeout_ms =
          static_cast<int>(std::max<int64_t>(0, (next_sample - MonotonicNanos()) / 1'000'000));
      if (::poll(&pfd, 1, timeout_ms) > 0) {
        unsigned char byte = 0;
        bool woke = false;
        while (::read(wake_[0], &byte, 1) == 1) {
          woke = true;
          if (byte != 0) signal = byte;
        }
        if (woke && signal != 0) {
          reason = "signal " + SignalName(signal);
          break;
        }
        MutexLock lock(mu_);
        if (!stop_reason_.empty()) {
          reason = stop_reason_;
          break;
        }
      }
    }
    Sample(MonotonicNanos());
    MaybeStartProbe();
    gpu_->Stop();
    RefillGpuSeries();
    // The probe is short; its result belongs in the final trace, and a tracer that is never
    // destroyed (one started by SLUICE_TRACE) must not leave a thread behind.
    if (probe_.joinable()) probe_.join();
    Write(/*final=*/true, reason);
    Progress(DoneText(reason));
    if (signal != 0) {
      // The job asked to die: let its own handler (or the default action) have the signal.
      RestoreSignalHandlers();
      ::kill(::getpid(), signal);
    } else {
      RestoreSignalHandlers();
      if (reason == "window elapsed" && opt_.on_window_end) opt_.on_window_end();
    }
  }

  // CUPTI delivers activity records late (a buffer at a time), so the GPU busy fraction of
  // recent samples can read low while the job runs; once recording has stopped every record is
  // in, and the whole series is computed again.
  void RefillGpuSeries() {
    MutexLock lock(mu_);
    // sample_ns_ holds the times of the samples at full resolution, the last of the series.
    auto& gpu = trace_.series.gpu_busy;
    const size_t first = gpu.size() - std::min(gpu.size(), sample_ns_.size());
    for (size_t k = 1; k < sample_ns_.size() && first + k < gpu.size(); ++k) {
      gpu[first + k] = gpu_->BusyFraction(sample_ns_[k - 1], sample_ns_[k]);
    }
  }

  // Appends one sample of everything; called on the tracer's thread.
  void Sample(int64_t now) {
    struct Seen {
      uint64_t id;
      std::string config_path, config_text;
      std::vector<std::string> classes;  // read once, when the pipeline is first seen
      pipeline::PipelineSnapshot snap;
    };
    std::vector<Seen> seen;
    pipeline::ForEachLivePipeline([&](const pipeline::Pipeline& p) {
      const bool first = named_.insert(p.id()).second;
      seen.push_back({p.id(), p.config_path(), p.config_text(),
                      first ? p.ClassNames() : std::vector<std::string>{}, p.Snapshot()});
    });
    const double process_cpu = ProcessCpuNanos() * 1e-9;
    auto host = internal::ReadHostCpuTicks();
    double host_busy = 0;
    if (host && last_host_ && host->total > last_host_->total) {
      host_busy = static_cast<double>(host->busy - last_host_->busy) /
                  static_cast<double>(host->total - last_host_->total);
    }
    last_host_ = host;
    const int64_t rss = internal::ReadRssBytes();
    const int64_t disk = internal::ReadStorageBytesRead();
    gpu_->Flush();
    const double gpu = last_sample_ns_ == 0 ? -1 : gpu_->BusyFraction(last_sample_ns_, now);
    last_sample_ns_ = now;
    sample_ns_.push_back(now);

    MutexLock lock(mu_);
    trace::Series& s = trace_.series;
    s.t.push_back((now - start_ns_) * 1e-9);
    s.process_cpu.push_back(process_cpu);
    s.host_busy.push_back(host_busy);
    s.rss_bytes.push_back(rss);
    s.disk_read_bytes.push_back(disk);
    s.gpu_busy.push_back(gpu);
    for (Seen& p : seen) {
      auto it = std::find_if(states_.begin(), states_.end(),
                             [&](const auto& st) { return st.id == p.id; });
      if (it == states_.end()) {
        AddPipeline(p.id, p.config_path, p.config_text, p.snap, s.t.size() - 1);
        trace_.pipelines.back().classes = std::move(p.classes);
        it = states_.end() - 1;
      }
      if (!it->alive) continue;  // destroyed since the snapshot was taken: keep its final counters
      AlignStages(*it, p.snap);
      it->last = std::move(p.snap);
      ReadThreads(*it);
      UpdateTotals(*it);
    }
    for (PipelineState& st : states_) AppendSample(st);
    ++trace_.tracer.samples;
    ReportProgress();
    // Memory stays bounded: samples older than the full-resolution window merge into buckets,
    // which the next flush appends to the file.
    try {
      trace::Compact(trace_, [this](const trace::Trace& t, size_t i) { writer_.OnBucket(t, i); });
    } catch (const std::exception& e) {
      ReportWriteError(e);
    }
    while (sample_ns_.size() > s.t.size() - s.merged.size()) sample_ns_.pop_front();
  }

  // Starts tracking a pipeline whose series begin at sample `first_index`.
  void AddPipeline(uint64_t id, const std::string& path, const std::string& text,
                   const pipeline::PipelineSnapshot& snap, size_t first_index)
      SLUICE_REQUIRES(mu_) {
    trace::PipelineTrace pt;
    pt.name = snap.name;
    pt.config_path = path;
    pt.config_text = text;
    pt.first_index = first_index;
    pt.first_sample = first_index < trace_.series.t.size() ? trace_.series.t[first_index]
                      : trace_.series.t.empty()            ? 0.0
                                                           : trace_.series.t.back();
    pt.stage_series.resize(snap.stages.size());
    trace_.pipelines.push_back(std::move(pt));
    PipelineState st;
    st.id = id;
    st.index = trace_.pipelines.size() - 1;
    st.last = snap;
    st.threads.resize(snap.stages.size());
    states_.push_back(std::move(st));
    UpdateTotals(states_.back());
    if (opt_.measure_disks && !probe_requested_) {
      probe_requested_ = true;
      probe_dirs_ = internal::DataDirectories(text, path);
    }
  }

  // Starts the disk probe for the first pipeline's data, on a thread of its own so sampling
  // goes on; called on the tracer's thread only, which also joins it.
  void MaybeStartProbe() {
    std::vector<std::filesystem::path> dirs;
    {
      MutexLock lock(mu_);
      if (!probe_requested_ || probe_.joinable() || probe_done_) return;
      dirs = probe_dirs_;
    }
    probe_ = std::thread([this, dirs] {
      pthread_setname_np(pthread_self(), "sluice-diskprobe");
      auto disks = internal::MeasureDisks(dirs, opt_.cache_dir);
      double cpu = ThreadCpuNanos() * 1e-9;
      MutexLock lock(mu_);
      trace_.host.disks = std::move(disks);
      probe_cpu_ = cpu;
      probe_done_ = true;
    });
  }

  // A stage inserted into a running pipeline (a cache, at an epoch boundary) gets series that
  // read zero before it existed; the other stages keep theirs, matched by name.
  void AlignStages(PipelineState& st, const pipeline::PipelineSnapshot& snap) SLUICE_REQUIRES(mu_) {
    const auto& old = st.last.stages;
    const bool same = old.size() == snap.stages.size() &&
                      std::equal(old.begin(), old.end(), snap.stages.begin(),
                                 [](const auto& a, const auto& b) { return a.name == b.name; });
    if (same) return;
    trace::PipelineTrace& pt = trace_.pipelines[st.index];
    const size_t samples = pt.consumer_next.size();
    std::vector<trace::StageSeries> series;
    std::vector<ThreadTotals> threads;
    for (const pipeline::StageSnapshot& s : snap.stages) {
      size_t i = 0;
      while (i < old.size() && old[i].name != s.name) ++i;
      if (i < old.size() && i < pt.stage_series.size() && i < st.threads.size()) {
        series.push_back(std::move(pt.stage_series[i]));
        threads.push_back(std::move(st.threads[i]));
        continue;
      }
      series.push_back(trace::ZeroStageSeries(samples));
      threads.emplace_back();
    }
    pt.stage_series = std::move(series);
    st.threads = std::move(threads);
  }

  void ReadThreads(PipelineState& st) {
    for (size_t i = 0; i < st.last.stages.size() && i < st.threads.size(); ++i) {
      for (const auto& w : st.last.stages[i].workers) {
        if (w.tid == 0) continue;
        if (auto c = internal::ReadThreadCounters(w.tid)) st.threads[i].last[w.tid] = *c;
      }
    }
  }

  // Copies a pipeline's latest counters into its totals in the trace.
  void UpdateTotals(PipelineState& st) SLUICE_REQUIRES(mu_) {
    trace::PipelineTrace& pt = trace_.pipelines[st.index];
    pt.name = st.last.name;
    pt.epochs_completed = st.last.finished ? st.last.epoch + 1 : st.last.epoch;
    pt.finished = st.last.finished;
    pt.closed = !st.alive;
    pt.stages.clear();
    for (size_t i = 0; i < st.last.stages.size(); ++i) {
      pt.stages.push_back(st.threads[i].Sum(ToStageTrace(st.last.stages[i])));
    }
    pt.consumer.next_calls = st.last.consumer.next_calls;
    pt.consumer.wait_seconds = st.last.consumer.wait_seconds;
    pt.consumer.between_seconds = st.last.consumer.between_seconds;
  }

  void AppendSample(PipelineState& st) SLUICE_REQUIRES(mu_) {
    trace::PipelineTrace& pt = trace_.pipelines[st.index];
    pt.consumer_next.push_back(st.last.consumer.next_calls);
    pt.consumer_wait.push_back(st.last.consumer.wait_seconds);
    pt.consumer_between.push_back(st.last.consumer.between_seconds);
    for (size_t i = 0; i < st.last.stages.size(); ++i) {
      const auto& s = st.last.stages[i];
      trace::StageSeries& ss = pt.stage_series[i];
      ss.elements_out.push_back(s.elements_out);
      ss.cpu_seconds.push_back(s.cpu_seconds);
      ss.busy_seconds.push_back(s.busy_seconds);
      ss.blocked_input_seconds.push_back(s.blocked_input_seconds);
      ss.blocked_output_seconds.push_back(s.blocked_output_seconds);
      ss.queue_size.push_back(s.queue_size);
      // Once a stage has had workers its columns continue, even while it runs inline.
      if (s.async || !ss.worker_busy_seconds.empty()) {
        if (ss.worker_busy_seconds.size() < s.workers.size()) {
          // Columns start where the pipeline's series start.
          ss.worker_busy_seconds.resize(s.workers.size(),
                                        std::vector<double>(ss.elements_out.size() - 1, 0.0));
          ss.worker_tids.resize(s.workers.size(), 0);
        }
        for (size_t w = 0; w < s.workers.size(); ++w) {
          ss.worker_busy_seconds[w].push_back(s.workers[w].busy_seconds);
          if (s.workers[w].tid != 0) ss.worker_tids[w] = s.workers[w].tid;
        }
      }
    }
  }

  void ReportProgress() SLUICE_REQUIRES(mu_) {
    if (opt_.progress_fd < 0 || trace_.pipelines.empty()) return;
    // The busiest pipeline's consumer is the job's progress.
    const trace::PipelineTrace* best = &trace_.pipelines[0];
    for (const auto& p : trace_.pipelines) {
      if (p.consumer.next_calls > best->consumer.next_calls) best = &p;
    }
    const auto& t = trace_.series.t;
    const size_t n = best->consumer_next.size();
    double rate = 0;
    size_t back = std::min<size_t>(n - 1, static_cast<size_t>(std::max(1.0, 1.0 / opt_.interval)));
    if (n >= 2 && back > 0) {
      double dt = t[t.size() - 1] - t[t.size() - 1 - back];
      if (dt > 0) rate = (best->consumer_next[n - 1] - best->consumer_next[n - 1 - back]) / dt;
    }
    Progress(ProgressText(t.back(), best->consumer.next_calls, rate, best->name));
  }

  void Progress(const std::string& line) {
    if (opt_.progress_fd < 0) return;
    [[maybe_unused]] ssize_t n = ::write(opt_.progress_fd, line.data(), line.size());
  }

  // Appends what is new to the trace file; the final write also produces the Chrome trace.
  void Write(bool final, const std::string& reason) {
    std::string text;
    std::string chrome;
    const trace::GpuTrace gpu = gpu_->Summary(Duration());
    const double tracer_cpu = ThreadCpuNanos() * 1e-9;
    try {
      MutexLock lock(mu_);
      // The trace's own figures are brought up to date in place (Current() shows them too), so
      // that no flush copies the series.
      UpdateFigures(final, reason, gpu, tracer_cpu);
      text = writer_.TakeNew(trace_);
      if (final && !opt_.chrome_path.empty()) chrome = trace::ToChromeTrace(trace_);
    } catch (const std::exception& e) {
      ReportWriteError(e);
      return;
    }
    try {
      writer_.Append(text);
      if (!chrome.empty()) WriteFileAtomically(opt_.chrome_path, chrome, "the Chrome trace");
    } catch (const std::exception& e) {
      ReportWriteError(e);
    }
  }

  double Duration() const {
    MutexLock lock(mu_);
    return trace_.series.t.empty() ? 0.0 : trace_.series.t.back();
  }

  void UpdateFigures(bool final, const std::string& reason, const trace::GpuTrace& gpu,
                     double tracer_cpu) SLUICE_REQUIRES(mu_) {
    trace::Trace& t = trace_;
    t.job.duration = t.series.t.empty() ? 0.0 : t.series.t.back();
    t.job.end_reason = reason;
    t.job.cut_short = !final || reason.rfind("signal", 0) == 0;
    t.gpu = gpu;
    t.tracer.cpu_seconds = tracer_cpu + probe_cpu_;
    const double process_cpu = t.series.process_cpu.empty() ? 0 : t.series.process_cpu.back();
    t.tracer.overhead_fraction = process_cpu > 0 ? t.tracer.cpu_seconds / process_cpu : 0;
    if (t.pipelines.empty()) return;
    const trace::PipelineTrace* best = &t.pipelines[0];
    for (const auto& p : t.pipelines) {
      if (p.consumer.next_calls > best->consumer.next_calls) best = &p;
    }
    std::vector<double> times(t.series.t.begin() + static_cast<long>(best->first_index),
                              t.series.t.end());
    // `times` holds seconds since tracing began, so the cut is too.
    t.tracer.warmup_seconds = FindWarmup(times, best->consumer_next);
    t.tracer.warmup_method =
        fmt::format("{} of pipeline '{}'", trace::kSteadyStartRule, best->name);
  }

  // The job must go on: say so once and keep sampling.
  void ReportWriteError(const std::exception& e) {
    if (write_error_reported_.exchange(true)) return;
    Warn("tracer: {} (the job continues; tracing goes on in memory)", e.what());
  }

  TracerOptions opt_;
  int wake_[2] = {-1, -1};
  int64_t start_ns_ = 0;
  std::unique_ptr<GpuMonitor> gpu_;
  std::thread thread_;
  std::thread probe_;
  bool handlers_installed_ = false;
  // Tracer-thread private:
  std::optional<internal::HostCpuTicks> last_host_;
  int64_t last_sample_ns_ = 0;
  std::deque<int64_t> sample_ns_;  // when each full-resolution sample was taken (MonotonicNanos)
  std::atomic<bool> write_error_reported_{false};
  bool probe_requested_ SLUICE_GUARDED_BY(mu_) = false;
  bool probe_done_ SLUICE_GUARDED_BY(mu_) = false;
  std::vector<std::filesystem::path> probe_dirs_ SLUICE_GUARDED_BY(mu_);

  mutable Mutex mu_;
  trace::Trace trace_ SLUICE_GUARDED_BY(mu_);
  // The tracer's thread only (Sample and Write), so that its appends need no lock.
  trace::ChunkedWriter writer_;
  std::vector<PipelineState> states_ SLUICE_GUARDED_BY(mu_);
  std::set<uint64_t> named_;  // pipelines whose class names were read; the sampling thread only
  std::string stop_reason_ SLUICE_GUARDED_BY(mu_);
  double probe_cpu_ SLUICE_GUARDED_BY(mu_) = 0;
};

Tracer::Tracer(TracerOptions options) : impl_(std::make_unique<TracerImpl>(std::move(options))) {}
Tracer::~Tracer() = default;
void Tracer::Stop(const std::string& end_reason) { impl_->Stop(end_reason); }
trace::Trace Tracer::Current() const { return impl_->Current(); }
void Tracer::SetRetunes(uint64_t pipeline_id, std::vector<trace::Retune> retunes) {
  impl_->SetRetunes(pipeline_id, std::move(retunes));
}

}  // namespace sluice::tracer
