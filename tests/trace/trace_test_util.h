// Traces built by hand for the trace model's tests, and the checks they share: MakeTrace (every
// field set, values a lossy writer would change), ExpectSameTrace and the parse-error helpers.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "sluice/trace/io.h"
#include "sluice/trace/trace.h"

namespace sluice::trace::test_util {

using Json = nlohmann::json;

inline constexpr char kOrigin[] = "t.json";

// A stage description for MakeTrace.
struct StageSpec {
  std::string name;
  bool async = false;
  int workers = 1;
  std::vector<int> tids;  // one per worker when async; 0 = unknown
};

// A pipeline with `samples` samples from `first_index` on, its counters growing at rates that
// differ by stage, and values with many significant digits so that a lossy writer shows up.
inline PipelineTrace MakePipeline(const std::string& name, const std::vector<StageSpec>& specs,
                                  size_t first_index, size_t samples,
                                  const std::vector<double>& t) {
  PipelineTrace p;
  p.name = name;
  p.config_path = "configs/" + name + ".json";
  p.config_text = "{\n  \"name\": \"" + name + "\",\n  \"stages\": []\n}\n";
  p.epochs_completed = 3;
  p.finished = true;
  p.first_sample = t[first_index];
  p.first_index = first_index;
  for (size_t s = 0; s < specs.size(); ++s) {
    const StageSpec& spec = specs[s];
    StageTrace st;
    st.name = spec.name;
    st.op = "op_" + spec.name;
    st.parallelizable = spec.async;
    st.deterministic = s % 2 == 0;
    st.stateless = s % 3 != 0;
    st.inspected = s == 0 ? "deterministic" : "";
    st.parallelism = spec.async ? spec.workers : 1;
    st.buffer_size = spec.async ? 4 : 0;
    st.ordered = s % 2 == 1;
    st.async = spec.async;
    st.elements_in = 1000 + static_cast<int64_t>(s);
    st.elements_out = 990 + static_cast<int64_t>(s);
    st.bytes_out = int64_t{1} << (30 + s % 3);
    st.cpu_seconds = 1.2345678901234567 * static_cast<double>(s + 1);
    st.busy_seconds = 2.0 / 3.0 * static_cast<double>(s + 1);
    st.blocked_input_seconds = 0.1 * static_cast<double>(s);
    st.blocked_output_seconds = 1e-9 * static_cast<double>(s);
    st.queue_mean = spec.async ? 2.718281828459045 : 0;
    st.queue_max = spec.async ? 4 : 0;
    st.voluntary_switches = 12345 + static_cast<int64_t>(s);
    st.involuntary_switches = 67 + static_cast<int64_t>(s);
    st.minor_faults = 890;
    st.major_faults = static_cast<int64_t>(s);
    p.stages.push_back(st);

    StageSeries ss;
    const double rate = 0.013 * static_cast<double>(s + 1);
    for (size_t j = 0; j < samples; ++j) {
      const double x = static_cast<double>(j);
      ss.elements_out.push_back(static_cast<int64_t>(j * (s + 3)));
      ss.cpu_seconds.push_back(rate * x + 1e-7 * std::sin(x));
      ss.busy_seconds.push_back(rate * 1.1 * x);
      ss.blocked_input_seconds.push_back(0.001 * x * x);
      ss.blocked_output_seconds.push_back(x / 7.0);
      ss.queue_size.push_back(spec.async ? static_cast<int64_t>(j % 5) : 0);
    }
    if (spec.async) {
      ss.worker_tids = spec.tids;
      for (int w = 0; w < spec.workers; ++w) {
        std::vector<double> busy;
        // Worker w is busy (w + 1) / (workers + 1) of each 0.1 s interval.
        const double fraction = static_cast<double>(w + 1) / (spec.workers + 1);
        for (size_t j = 0; j < samples; ++j) busy.push_back(0.1 * fraction * j);
        ss.worker_busy_seconds.push_back(busy);
      }
    }
    p.stage_series.push_back(ss);
  }
  p.consumer = {.next_calls = 987, .wait_seconds = 1.5, .between_seconds = 3.25};
  for (size_t j = 0; j < samples; ++j) {
    p.consumer_next.push_back(static_cast<int64_t>(j * 2));
    p.consumer_wait.push_back(0.03 * static_cast<double>(j) + 1e-12);
  }
  return p;
}

// A trace built by hand: two pipelines (the second first seen at sample 10), async stages with
// known and unknown worker thread ids, inline stages, a GPU and every scalar set.
inline Trace MakeTrace(size_t samples = 50) {
  Trace trace;
  trace.sluice_version = "0.1.0";
  trace.host.hostname = "worker-7";
  trace.host.os = "Linux 6.1.0 (Debian GNU/Linux 12)";
  trace.host.cpu_model = "AMD EPYC 7B13";
  trace.host.cores = 16;
  trace.host.memory_bytes = int64_t{64} << 30;
  trace.host.disks.push_back({.device = "8:1 /dev/vda1",
                              .path = "/data",
                              .read_mb_per_s = 812.25,
                              .probe_bytes = int64_t{256} << 20,
                              .probe_seconds = 0.3151,
                              .method = "sequential read after posix_fadvise(DONTNEED)",
                              .cached = true});
  trace.job.command = {"python3", "train.py", "--epochs", "3", "--name=a b"};
  trace.job.pid = 4242;
  trace.job.start_unix = 1700000000.123456;
  trace.job.duration = 0.1 * static_cast<double>(samples - 1);
  trace.job.cut_short = true;
  trace.job.end_reason = "signal SIGTERM";
  trace.job.exit_signal = "SIGTERM";
  for (size_t i = 0; i < samples; ++i) {
    const double x = static_cast<double>(i);
    trace.series.t.push_back(0.1 * x + 1e-6 * std::cos(x) + 1e-6);
    trace.series.process_cpu.push_back(0.37 * x);
    trace.series.host_busy.push_back(0.5 + 0.25 * std::sin(x));
    trace.series.rss_bytes.push_back((int64_t{100} << 20) + static_cast<int64_t>(i) * 4096);
    trace.series.disk_read_bytes.push_back(static_cast<int64_t>(i) * 1'000'000);
    trace.series.gpu_busy.push_back(i == 0 ? -1 : 0.75);
  }
  trace.pipelines.push_back(MakePipeline("train",
                                         {{"files"},
                                          {"read", true, 2, {101, 102}},
                                          {"decode", true, 3, {103, 0, 105}},
                                          {"flip"},
                                          {"batch"}},
                                         0, samples, trace.series.t));
  trace.pipelines.push_back(MakePipeline("eval", {{"gen"}, {"map", true, 2, {201, 202}}}, 10,
                                         samples - 10, trace.series.t));
  trace.gpu = {.status = "ok",
               .reason = "",
               .device_name = "NVIDIA H100 80GB HBM3",
               .kernels = 12345,
               .kernel_busy_seconds = 3.5,
               .busy_fraction = 0.71,
               .h2d_bytes = int64_t{3} << 30,
               .h2d_seconds = 0.25,
               .d2h_bytes = 4096,
               .d2h_seconds = 1e-5};
  trace.tracer = {.interval = 0.1,
                  .samples = static_cast<int64_t>(samples),
                  .cpu_seconds = 0.0123,
                  .overhead_fraction = 0.0031,
                  .warmup_seconds = 1.5,
                  .warmup_method = "throughput within 10% of the final mean"};
  return trace;
}

// Sets what MakeTrace leaves at its default and the writer omits or writes only when set: class
// names, a closed pipeline, the consumer_between column and re-tunes with their changes.
inline Trace WithEveryOptionalField(Trace trace) {
  trace.job.exit_code = 143;
  PipelineTrace& p = trace.pipelines[0];
  p.classes = {"cat", "dog", "bird \"quoted\""};
  p.closed = true;
  for (size_t j = 0; j < p.consumer_next.size(); ++j) {
    p.consumer_between.push_back(0.0071 * static_cast<double>(j) + 1e-13);
  }
  p.retunes.push_back({.t = 2.3456789012345,
                       .action = "apply",
                       .reason = "stage 'decode' is the bottleneck",
                       .changes = {{.stage = "decode",
                                    .knob = "parallelism",
                                    .from = 3,
                                    .to = 5,
                                    .why = "more workers for the bottleneck"},
                                   {.stage = "batch",
                                    .knob = "deterministic",
                                    .from = 1,
                                    .to = 0,
                                    .why = "order is not needed",
                                    .when = "next_epoch",
                                    .note = "a fused stage changes at the next epoch"}},
                       .before_outputs_per_s = 101.25,
                       .predicted_outputs_per_s = 187.1234567,
                       .calibrated_outputs_per_s = 175.5,
                       .measured_outputs_per_s = 170.0625,
                       .kept = true});
  p.retunes.push_back({.t = 4.5,
                       .action = "rollback",
                       .reason = "measured slower than before",
                       .before_outputs_per_s = 170.0625,
                       .kept = false});
  return trace;
}

// Every field of two traces, one assertion each so a failure names the field, then the whole
// traces compared with their defaulted operator== so that a field added later is not missed.
inline void ExpectSameTrace(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.sluice_version, b.sluice_version);
  EXPECT_EQ(a.host.hostname, b.host.hostname);
  EXPECT_EQ(a.host.os, b.host.os);
  EXPECT_EQ(a.host.cpu_model, b.host.cpu_model);
  EXPECT_EQ(a.host.cores, b.host.cores);
  EXPECT_EQ(a.host.memory_bytes, b.host.memory_bytes);
  ASSERT_EQ(a.host.disks.size(), b.host.disks.size());
  for (size_t i = 0; i < a.host.disks.size(); ++i) {
    const DiskBandwidth& x = a.host.disks[i];
    const DiskBandwidth& y = b.host.disks[i];
    EXPECT_EQ(x.device, y.device);
    EXPECT_EQ(x.path, y.path);
    EXPECT_EQ(x.read_mb_per_s, y.read_mb_per_s);
    EXPECT_EQ(x.probe_bytes, y.probe_bytes);
    EXPECT_EQ(x.probe_seconds, y.probe_seconds);
    EXPECT_EQ(x.method, y.method);
    EXPECT_EQ(x.cached, y.cached);
  }
  EXPECT_EQ(a.job.command, b.job.command);
  EXPECT_EQ(a.job.pid, b.job.pid);
  EXPECT_EQ(a.job.start_unix, b.job.start_unix);
  EXPECT_EQ(a.job.duration, b.job.duration);
  EXPECT_EQ(a.job.cut_short, b.job.cut_short);
  EXPECT_EQ(a.job.end_reason, b.job.end_reason);
  EXPECT_EQ(a.job.exit_code, b.job.exit_code);
  EXPECT_EQ(a.job.exit_signal, b.job.exit_signal);
  ASSERT_EQ(a.pipelines.size(), b.pipelines.size());
  for (size_t i = 0; i < a.pipelines.size(); ++i) {
    SCOPED_TRACE("pipeline " + std::to_string(i));
    const PipelineTrace& p = a.pipelines[i];
    const PipelineTrace& q = b.pipelines[i];
    EXPECT_EQ(p.name, q.name);
    EXPECT_EQ(p.config_path, q.config_path);
    EXPECT_EQ(p.config_text, q.config_text);
    EXPECT_EQ(p.epochs_completed, q.epochs_completed);
    EXPECT_EQ(p.classes, q.classes);
    EXPECT_EQ(p.finished, q.finished);
    EXPECT_EQ(p.closed, q.closed);
    EXPECT_EQ(p.first_sample, q.first_sample);
    ASSERT_EQ(p.stages.size(), q.stages.size());
    for (size_t s = 0; s < p.stages.size(); ++s) {
      SCOPED_TRACE("stage " + std::to_string(s));
      const StageTrace& x = p.stages[s];
      const StageTrace& y = q.stages[s];
      EXPECT_EQ(x.name, y.name);
      EXPECT_EQ(x.op, y.op);
      EXPECT_EQ(x.parallelizable, y.parallelizable);
      EXPECT_EQ(x.deterministic, y.deterministic);
      EXPECT_EQ(x.stateless, y.stateless);
      EXPECT_EQ(x.inspected, y.inspected);
      EXPECT_EQ(x.parallelism, y.parallelism);
      EXPECT_EQ(x.buffer_size, y.buffer_size);
      EXPECT_EQ(x.ordered, y.ordered);
      EXPECT_EQ(x.async, y.async);
      EXPECT_EQ(x.elements_in, y.elements_in);
      EXPECT_EQ(x.elements_out, y.elements_out);
      EXPECT_EQ(x.bytes_out, y.bytes_out);
      EXPECT_EQ(x.cpu_seconds, y.cpu_seconds);
      EXPECT_EQ(x.busy_seconds, y.busy_seconds);
      EXPECT_EQ(x.blocked_input_seconds, y.blocked_input_seconds);
      EXPECT_EQ(x.blocked_output_seconds, y.blocked_output_seconds);
      EXPECT_EQ(x.queue_mean, y.queue_mean);
      EXPECT_EQ(x.queue_max, y.queue_max);
      EXPECT_EQ(x.voluntary_switches, y.voluntary_switches);
      EXPECT_EQ(x.involuntary_switches, y.involuntary_switches);
      EXPECT_EQ(x.minor_faults, y.minor_faults);
      EXPECT_EQ(x.major_faults, y.major_faults);
    }
    EXPECT_EQ(p.consumer.next_calls, q.consumer.next_calls);
    EXPECT_EQ(p.consumer.wait_seconds, q.consumer.wait_seconds);
    EXPECT_EQ(p.consumer.between_seconds, q.consumer.between_seconds);
    EXPECT_EQ(p.first_index, q.first_index);
    ASSERT_EQ(p.stage_series.size(), q.stage_series.size());
    for (size_t s = 0; s < p.stage_series.size(); ++s) {
      SCOPED_TRACE("stage series " + std::to_string(s));
      const StageSeries& x = p.stage_series[s];
      const StageSeries& y = q.stage_series[s];
      EXPECT_EQ(x.elements_out, y.elements_out);
      EXPECT_EQ(x.cpu_seconds, y.cpu_seconds);
      EXPECT_EQ(x.busy_seconds, y.busy_seconds);
      EXPECT_EQ(x.blocked_input_seconds, y.blocked_input_seconds);
      EXPECT_EQ(x.blocked_output_seconds, y.blocked_output_seconds);
      EXPECT_EQ(x.queue_size, y.queue_size);
      EXPECT_EQ(x.worker_tids, y.worker_tids);
      EXPECT_EQ(x.worker_busy_seconds, y.worker_busy_seconds);
    }
    EXPECT_EQ(p.consumer_next, q.consumer_next);
    EXPECT_EQ(p.consumer_wait, q.consumer_wait);
    EXPECT_EQ(p.consumer_between, q.consumer_between);
    ASSERT_EQ(p.retunes.size(), q.retunes.size());
    for (size_t r = 0; r < p.retunes.size(); ++r) {
      EXPECT_TRUE(p.retunes[r] == q.retunes[r]) << "retune " << r << " differs";
    }
  }
  EXPECT_EQ(a.series.t, b.series.t);
  EXPECT_EQ(a.series.process_cpu, b.series.process_cpu);
  EXPECT_EQ(a.series.host_busy, b.series.host_busy);
  EXPECT_EQ(a.series.rss_bytes, b.series.rss_bytes);
  EXPECT_EQ(a.series.disk_read_bytes, b.series.disk_read_bytes);
  EXPECT_EQ(a.series.gpu_busy, b.series.gpu_busy);
  EXPECT_EQ(a.gpu.status, b.gpu.status);
  EXPECT_EQ(a.gpu.reason, b.gpu.reason);
  EXPECT_EQ(a.gpu.device_name, b.gpu.device_name);
  EXPECT_EQ(a.gpu.kernels, b.gpu.kernels);
  EXPECT_EQ(a.gpu.kernel_busy_seconds, b.gpu.kernel_busy_seconds);
  EXPECT_EQ(a.gpu.busy_fraction, b.gpu.busy_fraction);
  EXPECT_EQ(a.gpu.h2d_bytes, b.gpu.h2d_bytes);
  EXPECT_EQ(a.gpu.h2d_seconds, b.gpu.h2d_seconds);
  EXPECT_EQ(a.gpu.d2h_bytes, b.gpu.d2h_bytes);
  EXPECT_EQ(a.gpu.d2h_seconds, b.gpu.d2h_seconds);
  EXPECT_EQ(a.tracer.interval, b.tracer.interval);
  EXPECT_EQ(a.tracer.samples, b.tracer.samples);
  EXPECT_EQ(a.tracer.cpu_seconds, b.tracer.cpu_seconds);
  EXPECT_EQ(a.tracer.overhead_fraction, b.tracer.overhead_fraction);
  EXPECT_EQ(a.tracer.warmup_seconds, b.tracer.warmup_seconds);
  EXPECT_EQ(a.tracer.warmup_method, b.tracer.warmup_method);
  // Exact, doubles too: nlohmann::json writes each double in the shortest text that reads back
  // as the same value.
  EXPECT_TRUE(a == b) << "the traces differ in a field the checks above do not name";
}

// The message ParseTrace(text, kOrigin) throws; fails the test when it does not throw.
inline std::string ParseError(std::string_view text) {
  try {
    ParseTrace(text, kOrigin);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a sluice::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error for: " << text.substr(0, 200);
  return "";
}

// The hand-made trace as a JSON document to damage.
inline Json TraceDocument() { return Json::parse(ToJson(MakeTrace())); }

// The message ParseTrace throws for a damaged document.
inline std::string DocError(const Json& doc) { return ParseError(doc.dump()); }

}  // namespace sluice::trace::test_util
