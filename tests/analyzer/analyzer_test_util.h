// Hand-built traces for the analyzer's tests: a pipeline whose counters grow at constant rates,
// so that each case's answer can be worked out by hand in its comment.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/analyzer/analysis.h"
#include "sluice/trace/trace.h"

namespace sluice::analyzer::test_util {

// One stage of a hand-built trace; its counters grow at constant rates (per second of trace).
struct StageSpec {
  std::string name;
  std::string op;
  int parallelism = 1;
  int buffer_size = 0;
  bool parallelizable = false;
  double out_per_s = 0;    // elements emitted per second
  double busy_per_s = 0;   // busy wall seconds per second (all workers)
  double cpu_per_s = 0;    // CPU seconds per second
  double queue_per_s = 0;  // growth of the output queue, elements per second
  int64_t bytes_per_element = 0;
};

// A whole hand-built trace: one pipeline, `seconds` long, sampled every `interval`.
struct TraceSpec {
  std::vector<StageSpec> stages;
  double outputs_per_s = 0;  // consumer Next() calls per second
  double wait_per_s = 0;     // consumer seconds in Next() per second
  double seconds = 10;
  double interval = 0.1;
  int cores = 4;
  double other_cpu_per_s = 0;   // process CPU outside the stages
  double disk_bytes_per_s = 0;  // -1: the kernel does not say
  double disk_mb_per_s = 0;     // measured bandwidth; 0: none measured
  int64_t memory_bytes = 16'000'000'000;
  int64_t rss_bytes = 1'000'000'000;
  double warmup_seconds = 0;
};

inline trace::Trace Build(const TraceSpec& spec) {
  trace::Trace t;
  t.host.cores = spec.cores;
  t.host.memory_bytes = spec.memory_bytes;
  if (spec.disk_mb_per_s > 0) {
    t.host.disks.push_back({"8:1 /dev/vda1", "/data", spec.disk_mb_per_s, 1 << 28, 0.3, "test"});
  }
  const auto samples = static_cast<size_t>(std::llround(spec.seconds / spec.interval)) + 1;
  double stage_cpu = 0;
  for (const StageSpec& s : spec.stages) stage_cpu += s.cpu_per_s;
  for (size_t k = 0; k < samples; ++k) {
    const double x = static_cast<double>(k) * spec.interval;
    t.series.t.push_back(x);
    t.series.process_cpu.push_back((stage_cpu + spec.other_cpu_per_s) * x);
    t.series.host_busy.push_back(0);
    t.series.rss_bytes.push_back(spec.rss_bytes);
    t.series.disk_read_bytes.push_back(
        spec.disk_bytes_per_s < 0 ? -1 : std::llround(spec.disk_bytes_per_s * x));
    t.series.gpu_busy.push_back(-1);
  }
  trace::PipelineTrace p;
  p.name = "p";
  for (const StageSpec& s : spec.stages) {
    trace::StageTrace st;
    st.name = s.name;
    st.op = s.op;
    st.parallelizable = s.parallelizable;
    st.parallelism = s.parallelism;
    st.buffer_size = s.buffer_size;
    st.async = s.parallelism > 1 || s.buffer_size > 0;
    st.elements_out = std::llround(s.out_per_s * spec.seconds);
    st.bytes_out = st.elements_out * s.bytes_per_element;
    st.cpu_seconds = s.cpu_per_s * spec.seconds;
    st.busy_seconds = s.busy_per_s * spec.seconds;
    p.stages.push_back(st);
    trace::StageSeries ss;
    for (double x : t.series.t) {
      ss.elements_out.push_back(std::llround(s.out_per_s * x));
      ss.cpu_seconds.push_back(s.cpu_per_s * x);
      ss.busy_seconds.push_back(s.busy_per_s * x);
      ss.blocked_input_seconds.push_back(0);
      ss.blocked_output_seconds.push_back(0);
      ss.queue_size.push_back(std::llround(s.queue_per_s * x));
    }
    p.stage_series.push_back(ss);
  }
  for (double x : t.series.t) {
    p.consumer_next.push_back(std::llround(spec.outputs_per_s * x));
    p.consumer_wait.push_back(spec.wait_per_s * x);
  }
  p.consumer.next_calls = p.consumer_next.back();
  p.consumer.wait_seconds = p.consumer_wait.back();
  t.pipelines.push_back(p);
  t.job.duration = spec.seconds;
  t.tracer.interval = spec.interval;
  t.tracer.samples = static_cast<int64_t>(samples);
  t.tracer.warmup_seconds = spec.warmup_seconds;
  return t;
}

inline const StageAnalysis& StageNamed(const Analysis& a, const std::string& name) {
  for (const StageAnalysis& s : a.stages) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no stage " + name);
}

// A chain: src (inline) -> A (1 worker) -> B (2 workers), 500 outputs/s, 10 s.
//   W_src = 0.05 s/s / 500/s = 0.1 ms, W_A = 0.9 / 500 = 1.8 ms, W_B = 1.2 / 500 = 2.4 ms.
//   src runs inline on A's worker: one server, 1 / (0.1 + 1.8) ms = 526.3/s.
//   B: 2 / 2.4 ms = 833.3/s.  Consumer: (1 - 0.3) s/s / 500/s = 1.4 ms: 714.3/s.
//   CPU: sum D = (0.05 + 0.9 + 1.2) / 500 = 4.3 ms; 4 cores / 4.3 ms = 930.2/s.
//   Predicted: 526.3/s, bottleneck stage 'A' (with 'src'). Verdict: 30% waiting: highly.
inline TraceSpec Chain() {
  TraceSpec spec;
  spec.stages = {
      {"src", "generate", 1, 0, false, 500, 0.05, 0.05},
      {"A", "burn", 1, 2, true, 500, 0.9, 0.9},
      {"B", "burn", 2, 2, true, 500, 1.2, 1.2},
  };
  spec.outputs_per_s = 500;
  spec.wait_per_s = 0.3;
  spec.cores = 4;
  return spec;
}

// A relative tolerance for figures worked out by hand (they are exact up to rounding).
inline constexpr double kRel = 1e-6;

}  // namespace sluice::analyzer::test_util

#define EXPECT_REL(actual, expected) \
  EXPECT_NEAR((actual), (expected), std::abs(expected) * ::sluice::analyzer::test_util::kRel)
