// The report's sections on the measurement itself: the time series, the environment the trace
// was taken in (host, job, GPU, the tracer's cost, the window and its confidence) and the
// glossary.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "report/internal/sections.h"
#include "report/internal/svg.h"
#include "sluice/common/figures.h"

namespace sluice::report::internal {
namespace {

// A definition-list entry; `value` already escaped.
std::string Item(const std::string& term, const std::string& value) {
  return fmt::format("<dt>{}</dt><dd>{}</dd>", Escape(term), value);
}

std::string UtcTime(double unix_seconds) {
  if (unix_seconds <= 0) return "unknown";
  const std::time_t secs = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

template <typename T>
std::vector<double> Tail(const std::vector<T>& v, size_t from) {
  return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())),
                             v.end());
}

// What every chart of a timeline shares: the samples it shows (the whole job, or the recent ones
// at full resolution), the x axis, the shaded steady window and the number of points.
struct Timeline {
  const View& v;
  size_t from = 0;        // the trace's first sample shown
  std::string id_suffix;  // appended to every chart's id ("" for the whole job)
  std::string title_suffix;
  std::string x_label = "seconds since tracing began";
  std::string window;  // the shaded band's label
  size_t points = 1;

  // Column `c` of the trace's series (times, process CPU, host busy, GPU busy) from `from` on.
  template <typename T>
  std::vector<double> Host(const std::vector<T>& c) const {
    return Tail(c, from);
  }
  // Column `c` of the pipeline's series (which begin at its first_index) from `from` on.
  template <typename T>
  std::vector<double> Pipe(const std::vector<T>& c) const {
    const size_t first = v.pipeline.first_index;
    return Tail(c, from > first ? from - first : 0);
  }
  // The pipeline's sample times shown.
  std::vector<double> Tp() const {
    return Tail(v.trace().series.t, std::max(from, v.pipeline.first_index));
  }

  // Shades the steady window on `chart`.
  void Shade(ChartSpec& chart) const {
    chart.shade_from = v.analysis().window.start;
    chart.shade_to = v.analysis().window.end;
    chart.shade_label = window;
  }
};

std::string OutputsChart(const Timeline& tl) {
  const View& v = tl.v;
  const analyzer::Analysis& a = v.analysis();
  ChartSpec outputs{.id = "chart-outputs" + tl.id_suffix,
                    .title = "Outputs delivered to the consumer" + tl.title_suffix,
                    .x_label = tl.x_label,
                    .y_label = v.unit};
  const std::vector<double> tp = tl.Tp();
  const Points o = Rates(tp, tl.Pipe(v.pipeline.consumer_next), 1, tl.points);
  outputs.lines.push_back({"measured " + v.unit, o.x, o.y});
  tl.Shade(outputs);
  outputs.y_markers.push_back(
      {a.predicted_outputs_per_s, fmt::format("model's bound {}", Num(a.predicted_outputs_per_s))});
  outputs.caption =
      fmt::format("Measured over the window: {} {}.", Num(a.measured_outputs_per_s), v.unit);
  size_t marked = 0;
  for (size_t i = 0; i < v.pipeline.retunes.size(); ++i) {
    if (tp.empty() || v.pipeline.retunes[i].t < tp.front()) continue;
    outputs.x_markers.push_back({v.pipeline.retunes[i].t, RetuneLabel(v.pipeline.retunes[i], i)});
    ++marked;
  }
  if (marked > 0) {
    outputs.caption += " Dashed verticals: the re-tunes listed under 'Re-tunes while it ran'.";
  }
  return LineChart(outputs);
}

std::string CpuChart(const Timeline& tl) {
  const trace::Trace& t = tl.v.trace();
  ChartSpec cpu{.id = "chart-cpu" + tl.id_suffix,
                .title = "CPU cores used" + tl.title_suffix,
                .x_label = tl.x_label,
                .y_label = "cores"};
  const std::vector<double> ts = tl.Host(t.series.t);
  const Points pc = Rates(ts, tl.Host(t.series.process_cpu), 1, tl.points);
  cpu.lines.push_back({"this process", pc.x, pc.y});
  const Points hb = Means(ts, tl.Host(t.series.host_busy), t.host.cores, tl.points);
  cpu.lines.push_back({"whole host", hb.x, hb.y, true});
  if (t.host.cores > 0) {
    cpu.y_markers.push_back(
        {static_cast<double>(t.host.cores), fmt::format("{} cores on the host", t.host.cores)});
  }
  tl.Shade(cpu);
  const double used = MeanCoresUsed(tl.v);
  cpu.caption =
      used >= 0 ? fmt::format("The process used {} cores on average over the window.", Num(used))
                : "";
  return LineChart(cpu);
}

std::string WaitChart(const Timeline& tl) {
  const View& v = tl.v;
  const analyzer::Analysis& a = v.analysis();
  ChartSpec wait{
      .id = "chart-wait" + tl.id_suffix,
      .title = "Consumer wait: share of time the training job spent in Next()" + tl.title_suffix,
      .x_label = tl.x_label,
      .y_label = "% of time"};
  Points w = Rates(tl.Tp(), tl.Pipe(v.pipeline.consumer_wait), 100, tl.points);
  // A wait is counted when Next() returns, so a long one lands in one sample and can exceed the
  // sample's length: the chart clamps at 100 %, the window's figure is exact.
  bool clamped = false;
  for (double& y : w.y) {
    if (y > 100) y = 100, clamped = true;
  }
  wait.lines.push_back({"waiting for input", w.x, w.y});
  wait.y_markers = {{20, "20%: highly input-bound"}, {5, "5%: moderately"}};
  wait.y_max = 100;
  tl.Shade(wait);
  wait.caption =
      fmt::format("Over the window: {} ({} input-bound).{}", Percent(a.input_bound.wait_fraction),
                  analyzer::ToString(a.input_bound.verdict),
                  clamped ? " A wait is counted when Next() returns, so one longer than "
                            "a sample shows as 100% there."
                          : "");
  return LineChart(wait);
}

std::string GpuChart(const Timeline& tl) {
  const trace::Trace& t = tl.v.trace();
  const analyzer::Analysis& a = tl.v.analysis();
  bool gpu_samples = false;
  for (double g : t.series.gpu_busy) gpu_samples = gpu_samples || g >= 0;
  if (t.gpu.status != "ok" || !gpu_samples) {
    if (!tl.id_suffix.empty()) return "";  // said once, under the whole job's charts
    return EmptyChart("chart-gpu", "GPU busy",
                      fmt::format("No GPU activity was recorded ({}): {}", t.gpu.status,
                                  t.gpu.reason.empty() ? "no reason recorded" : t.gpu.reason));
  }
  ChartSpec gpu{.id = "chart-gpu" + tl.id_suffix,
                .title = "GPU busy: share of time a kernel ran" + tl.title_suffix,
                .x_label = tl.x_label,
                .y_label = "% of time"};
  const Points g = Means(tl.Host(t.series.t), tl.Host(t.series.gpu_busy), 100, tl.points);
  gpu.lines.push_back({t.gpu.device_name.empty() ? "GPU" : t.gpu.device_name, g.x, g.y});
  gpu.y_max = 100;
  tl.Shade(gpu);
  gpu.caption = a.gpu_idle_fraction ? fmt::format("The GPU ran no kernel {} of the window.",
                                                  Percent(*a.gpu_idle_fraction))
                                    : "";
  return LineChart(gpu);
}

std::string QueuesChart(const Timeline& tl) {
  const View& v = tl.v;
  ChartSpec queues{
      .id = "chart-queues" + tl.id_suffix,
      .title = "Queue depths: elements waiting in each stage's output queue" + tl.title_suffix,
      .x_label = tl.x_label,
      .y_label = "elements"};
  for (size_t i = 0; i < v.pipeline.stages.size() && i < v.pipeline.stage_series.size(); ++i) {
    const trace::StageTrace& st = v.pipeline.stages[i];
    if (!st.async) continue;
    const Points q = Means(tl.Tp(), tl.Pipe(v.pipeline.stage_series[i].queue_size), 1, tl.points);
    queues.lines.push_back({fmt::format("{} (capacity {})", st.name, st.buffer_size), q.x, q.y});
  }
  tl.Shade(queues);
  queues.caption =
      "A queue that stays full means its consumer is slower; one that stays empty means its "
      "producer is.";
  if (queues.lines.empty()) {
    if (!tl.id_suffix.empty()) return "";
    return EmptyChart("chart-queues", "Queue depths",
                      "No stage has an output queue: every stage runs inline on the thread that "
                      "pulls it.");
  }
  return LineChart(queues);
}

// The host's and the job's facts, and the config's text.
std::string HostAndJobPart(const View& v) {
  const trace::Trace& t = v.trace();
  const analyzer::Analysis& a = v.analysis();
  std::string s;
  s += "<div class=\"cols\"><div><h3>Host</h3><dl>";
  s += Item("host", Escape(t.host.hostname.empty() ? "unknown" : t.host.hostname));
  s += Item("OS", Escape(t.host.os));
  s += Item("CPU", Escape(t.host.cpu_model));
  s += Item("cores", fmt::format("{}{}", t.host.cores,
                                 a.cores_overridden
                                     ? fmt::format(" (analysed for {} with --cores)", Num(a.cores))
                                     : ""));
  s += Item("memory", Escape(Bytes(static_cast<double>(t.host.memory_bytes))));
  for (const trace::DiskBandwidth& d : t.host.disks) {
    s += Item("disk " + d.device,
              Escape(fmt::format("{} MB/s read under {} ({}{})", Num(d.read_mb_per_s), d.path,
                                 d.method, d.cached ? ", remembered from an earlier run" : "")));
  }
  if (a.host_other_cores > 0) {
    s += Item("other processes", fmt::format("{} cores on average", Num(a.host_other_cores)));
  }
  s += "</dl></div><div><h3>Job</h3><dl>";
  std::string command;
  for (const std::string& arg : t.job.command) command += (command.empty() ? "" : " ") + arg;
  s += Item("command", "<code>" + Escape(command.empty() ? "unknown" : command) + "</code>");
  s += Item("pid", fmt::format("{}", t.job.pid));
  s += Item("traced from", Escape(UtcTime(t.job.start_unix)));
  s += Item("duration", Escape(Duration(t.job.duration)));
  s += Item("ended", Escape(t.job.end_reason.empty() ? "unknown" : t.job.end_reason) +
                         (t.job.cut_short ? " <strong class=\"tag\">cut short</strong>" : ""));
  if (t.job.exit_code || !t.job.exit_signal.empty()) {
    s += Item("exit", Escape(t.job.exit_signal.empty()
                                 ? fmt::format("status {}", t.job.exit_code.value_or(0))
                                 : "killed by " + t.job.exit_signal));
  }
  s += Item("trace", "<code>" + Escape(v.run.origin) + "</code>" +
                         (t.sluice_version.empty()
                              ? ""
                              : fmt::format(" (written by sluice {})", Escape(t.sluice_version))));
  s += Item("pipeline", Escape(v.pipeline.name) +
                            fmt::format(", {} epoch{} completed{}", v.pipeline.epochs_completed,
                                        v.pipeline.epochs_completed == 1 ? "" : "s",
                                        v.pipeline.finished ? ", ran to the end of its data" : ""));
  if (t.pipelines.size() > 1) {
    std::vector<std::string> others;
    for (const trace::PipelineTrace& p : t.pipelines) {
      if (p.name != v.pipeline.name) others.push_back(p.name);
    }
    s += Item("other pipelines",
              Escape(Quoted(others)) + " (choose one with <code>--pipeline NAME</code>)");
  }
  s += Item("config", "<code>" + Escape(v.pipeline.config_path) + "</code>");
  s += "</dl></div></div>";
  if (!v.pipeline.config_text.empty()) {
    s += "<details><summary>The config's text</summary><pre id=\"config-text\">" +
         Escape(v.pipeline.config_text) + "</pre></details>";
  }
  return s;
}

// The GPU's status and the tracer's own cost.
std::string GpuAndTracerPart(const View& v) {
  const trace::Trace& t = v.trace();
  std::string s;
  s += "<div class=\"cols\"><div id=\"gpu-status\"><h3>GPU (CUPTI)</h3><dl>";
  s += Item("status", Escape(t.gpu.status));
  if (t.gpu.status == "ok") {
    s += Item("device", Escape(t.gpu.device_name));
    s += Item("kernels", fmt::format("{}", t.gpu.kernels));
    s += Item("busy", Escape(fmt::format("{} of the trace ({} with a kernel running)",
                                         Percent(t.gpu.busy_fraction),
                                         Duration(t.gpu.kernel_busy_seconds))));
    s += Item("host to device",
              Escape(fmt::format("{} in {}", Bytes(t.gpu.h2d_bytes), Duration(t.gpu.h2d_seconds))));
    s += Item("device to host",
              Escape(fmt::format("{} in {}", Bytes(t.gpu.d2h_bytes), Duration(t.gpu.d2h_seconds))));
  }
  s += Item(t.gpu.status == "ok" ? "note" : "why not",
            Escape(t.gpu.reason.empty() ? (t.gpu.status == "ok" ? "-" : "no reason recorded")
                                        : t.gpu.reason));
  s += "</dl></div><div id=\"tracer-overhead\"><h3>The tracer's own cost</h3><dl>";
  s += Item("overhead", Escape(fmt::format("{} of the job's CPU ({} of CPU in {} samples)",
                                           Percent(t.tracer.overhead_fraction),
                                           Duration(t.tracer.cpu_seconds), t.tracer.samples)));
  s += Item("sampling", Escape("every " + Duration(t.tracer.interval)));
  s += Item("warm-up cut",
            Escape(fmt::format(
                "{} s ({})", Num(t.tracer.warmup_seconds),
                t.tracer.warmup_method.empty() ? "no method recorded" : t.tracer.warmup_method)));
  s += "</dl></div></div>";
  return s;
}

// The analysis window, its confidence, the disk reads and the analysis's notes.
std::string WindowPart(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  std::string s;
  s += "<h3>Analysis window and confidence</h3><dl>";
  s += Item("window",
            Escape(fmt::format("{} to {} s ({}, {} samples, {} {}): {}", Num(a.window.start),
                               Num(a.window.end), Duration(a.window.seconds), a.window.samples,
                               a.outputs, Plural(v.noun), a.window.method)));
  s += Item(
      "confidence",
      a.confidence.ok
          ? Escape(fmt::format("ok: the rate varies {} over {} blocks; standard error {}",
                               Percent(a.confidence.rate_cv), Duration(a.confidence.block_seconds),
                               Percent(a.confidence.rate_stderr)))
          : "<strong>low</strong>: " + Escape(a.confidence.reason));
  if (a.disk_bytes_per_output > 0) {
    s += Item("disk reads", Escape(fmt::format("{} per {} ({})", Bytes(a.disk_bytes_per_output),
                                               v.noun, a.disk_bytes_source)));
  }
  s += "</dl>";
  if (!a.notes.empty()) {
    s += "<ul class=\"notes\">";
    for (const std::string& n : a.notes) s += "<li>" + Escape(n) + "</li>";
    s += "</ul>";
  }
  return s;
}

// The points a chart of `samples` samples over `span` seconds gets: one per sample, at most
// `max_points`, and few enough that a point holds about 4 outputs, so that a slow pipeline's rate
// does not zigzag between 0 and one batch per sample.
size_t PointsFor(size_t samples, double span, double outputs_per_s, size_t max_points) {
  if (samples < 2) return 1;
  double points = static_cast<double>(std::min(samples - 1, max_points));
  if (outputs_per_s > 0 && span > 0)
    points = std::min(points, std::floor(span * outputs_per_s / 4));
  return std::max<size_t>(1, static_cast<size_t>(points));
}

std::string Charts(const Timeline& tl) {
  return OutputsChart(tl) + CpuChart(tl) + WaitChart(tl) + GpuChart(tl) + QueuesChart(tl);
}

// The samples after the coarse buckets, at full resolution: empty when none is merged.
std::string RecentPart(const View& v, const std::string& window) {
  const trace::Trace& t = v.trace();
  const size_t buckets = t.series.merged.size();
  if (buckets == 0 || t.series.t.size() < buckets + 2) return "";
  // From the last bucket: its cumulative columns end where the first fine sample begins.
  Timeline tl{v, buckets - 1, "-recent", " (recent, full resolution)"};
  tl.window = window;
  const size_t samples = t.series.t.size() - tl.from;
  const double span = t.series.t.back() - t.series.t[tl.from];
  tl.points = PointsFor(samples, span, v.analysis().measured_outputs_per_s, kFullResolutionPoints);
  const std::string thinning =
      tl.points + 1 < samples
          ? fmt::format(" Each point spans about {} (so that it holds about 4 {}).",
                        Duration(span / static_cast<double>(tl.points)), Plural(v.noun))
          : " One point per sample.";
  std::string s =
      "<h3 id=\"timeline-recent\">The last " + Escape(Duration(span)) + " at full resolution</h3>";
  s += fmt::format(
      "<p>{} samples every {}, from {} s to {} s: the tracer keeps its last {} at full "
      "resolution.{}</p>",
      samples - 1, Escape(Duration(t.tracer.interval)), Num(t.series.t[tl.from]),
      Num(t.series.t.back()), Escape(Duration(t.tracer.full_resolution_seconds)), Escape(thinning));
  return s + "<div class=\"charts\">" + Charts(tl) + "</div>";
}

}  // namespace

std::string TimelineSection(const View& v) {
  const analyzer::Analysis& a = v.analysis();
  const trace::Trace& t = v.trace();
  Timeline tl{v};
  tl.window = fmt::format("steady window {}-{} s", Num(a.window.start), Num(a.window.end));
  const size_t samples = t.series.t.size();
  const double span = samples > 1 ? t.series.t.back() - t.series.t.front() : 0;
  tl.points = PointsFor(samples, span, a.measured_outputs_per_s, kMaxPoints);
  const size_t buckets = t.series.merged.size();
  std::string thinning;
  if (buckets > 0) {
    thinning = fmt::format(
        " Samples older than the last {} are merged into buckets of {} or more ({} buckets), "
        "so these charts show the whole job coarsely, each point spanning about {}; the recent "
        "samples follow at full resolution.",
        Duration(t.tracer.full_resolution_seconds), Duration(t.tracer.bucket_seconds), buckets,
        Duration(span / static_cast<double>(tl.points)));
  } else if (tl.points + 1 < samples) {
    thinning = fmt::format(" Each point is the mean over about {} samples.",
                           (samples - 1 + tl.points - 1) / tl.points);
  }
  std::string s = "<section id=\"timeline\"><h2>Over time</h2>";
  s += fmt::format(
      "<p>{} samples every {}; the shaded band is the steady-state window the figures are taken "
      "over.{}</p>",
      samples, Escape(Duration(t.tracer.interval)), Escape(thinning));
  s += "<div class=\"charts\">" + Charts(tl) + "</div>";
  s += RecentPart(v, tl.window);
  return s + "</section>";
}

std::string EnvironmentSection(const View& v) {
  std::string s = "<section id=\"environment\"><h2>Environment and measurement</h2>";
  s += HostAndJobPart(v);
  s += GpuAndTracerPart(v);
  s += WindowPart(v);
  return s + "</section>";
}

std::string GlossarySection(const View& v) {
  const std::string n = v.noun;
  const std::vector<std::pair<std::string, std::string>> terms = {
      {"output", "One item the training job receives from Pipeline::Next(): a " +
                     std::string(n == "batch" ? "batch, since this pipeline batches" : "element") +
                     ". Every demand is per output, every rate in outputs per second."},
      {"outputs/s",
       "Outputs delivered to the consumer per second (X). Measured: outputs in the "
       "steady-state window divided by its length. Shown as " +
           v.unit + " here."},
      {"elements/s", "Elements a stage emits per second, before any batching."},
      {"steady-state window",
       "The part of the trace the figures are taken over: from the "
       "tracer's warm-up cut to the last sample (or the last output of a "
       "pipeline that finished its data)."},
      {"visit ratio (V)",
       "Elements of a stage per output, from the traffic equations of the "
       "stage graph: 32 for a stage before a batch of 32."},
      {"CPU demand (D)",
       "CPU seconds a stage spends per output (all its workers), from the "
       "threads' CPU clocks."},
      {"wall demand (W)",
       "Busy wall-clock seconds a stage spends per output. W above D means "
       "blocking inside the op (I/O, sleep, a lock) or waiting for a core."},
      {"service time (S)", "Busy wall seconds per element the stage emits: W / V."},
      {"utilization (U)",
       "The share of its workers' time a stage is busy: X * W / p, with p "
       "its workers. Near 100% a stage is saturated."},
      {"capacity", "The most outputs per second a stage could support on its own threads: p / W."},
      {"server",
       "The thread or threads a group of stages shares: inline stages run on the thread "
       "that pulls them, so their wall demands add up."},
      {"limit",
       "An upper bound on outputs/s: each server's capacity, the host's CPU (cores / "
       "total CPU demand), the disk (bandwidth / bytes read per output), the consumer "
       "(1 / training step) and memory."},
      {"bottleneck", "The lowest limit: what to change first."},
      {"predicted outputs/s",
       "The model's bound: the lowest limit at the given knobs and "
       "resources (analyzer::Predict). Its gap to the measured rate is "
       "how far the bottleneck is from saturation."},
      {"wait fraction",
       "The share of the window the training job spent inside Next() waiting "
       "for input."},
      {"input-bound verdict",
       "Highly input-bound when the wait fraction is at least 20%, "
       "moderately when at least 5%, else not."},
      {"training step",
       "The consumer's seconds per output outside Next(); its pace is one "
       "output per step."},
      {"blocked on input / output",
       "The share of a stage's workers' time spent waiting for "
       "upstream elements, or for room in its full output queue."},
      {"queue depth",
       "Elements waiting in a stage's output queue at a sample; its capacity is "
       "the stage's buffer_size."},
      {"CPU cores used", "CPU seconds the process (or host) used per second of wall time."},
      {"GPU busy",
       "The share of time at least one GPU kernel ran (CUPTI activity records, "
       "intervals merged)."},
      {"cores needed to keep pace",
       "The cores the pipeline's CPU work needs so that it "
       "delivers outputs as fast as the training step consumes "
       "them: consumer pace * (sum of D + other CPU per output)."},
      {"speedup",
       "Predicted outputs/s with the tuned knobs divided by the prediction at the "
       "traced knobs, on the same resources."},
      {"tracer overhead",
       "CPU seconds the tracer's own thread used, as a share of the CPU the "
       "job used."},
      {"involuntary switches",
       "Times a stage's worker threads were preempted while runnable: "
       "many of them are the sign of more threads than cores."},
  };
  std::string s =
      "<section id=\"glossary\"><h2>Glossary</h2><p>Every figure of this report, as "
      "docs/model.md defines it.</p><dl>";
  for (const auto& [term, definition] : terms) s += Item(term, Escape(definition));
  return s + "</dl></section>";
}

}  // namespace sluice::report::internal
