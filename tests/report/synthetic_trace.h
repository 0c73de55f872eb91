// Hand-built traces for the report's tests and benchmark: one pipeline whose counters grow at
// given rates with a small deterministic ripple, so charts have something to draw.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/trace/trace.h"

namespace sluice::report::testing {

struct SyntheticStage {
  std::string name;
  std::string op;
  int parallelism = 1;
  int buffer_size = 0;
  bool parallelizable = false;
  double out_per_s = 0;   // elements emitted per second
  double busy_per_s = 0;  // busy wall seconds per second, all workers
  double cpu_per_s = 0;   // CPU seconds per second, all workers
  int64_t bytes_per_element = 0;
};

struct SyntheticSpec {
  std::string pipeline = "train";
  std::vector<SyntheticStage> stages;
  double outputs_per_s = 0;  // consumer Next() calls per second
  double wait_per_s = 0;     // consumer seconds in Next() per second
  double other_cpu_per_s = 0.3;
  double seconds = 10;
  double interval = 0.1;
  int cores = 4;
  double gpu_busy = -1;  // GPU busy fraction; negative: no GPU was traced
  std::string gpu_reason = "no CUDA device was found (cuInit: CUDA_ERROR_NO_DEVICE)";
};

// The trace of `spec`: series every `interval` for `seconds`, totals equal to the series' ends.
inline trace::Trace BuildTrace(const SyntheticSpec& spec) {
  trace::Trace t;
  t.sluice_version = "0.1.0";
  t.host.hostname = "testhost";
  t.host.os = "Linux 6.1.0 (Debian GNU/Linux 12)";
  t.host.cpu_model = "Test CPU @ 2.0GHz";
  t.host.cores = spec.cores;
  t.host.memory_bytes = 16'000'000'000;
  t.job.command = {"./train", "--epochs", "1"};
  t.job.pid = 4242;
  t.job.start_unix = 1'790'000'000;
  t.job.duration = spec.seconds;
  t.job.end_reason = "window elapsed";
  const auto samples = static_cast<size_t>(std::llround(spec.seconds / spec.interval)) + 1;
  // A ripple of +-10 % around each rate, different per column.
  const auto ripple = [](size_t k, size_t column) {
    return 1 + 0.1 * std::sin(0.07 * static_cast<double>(k) + 1.3 * static_cast<double>(column));
  };
  trace::PipelineTrace p;
  p.name = spec.pipeline;
  p.config_path = "train.json";
  p.config_text = "{\"name\": \"" + spec.pipeline + "\", \"epochs\": 1, \"stages\": []}";
  p.stage_series.resize(spec.stages.size());
  double stage_cpu = 0;
  for (const SyntheticStage& s : spec.stages) stage_cpu += s.cpu_per_s;
  double next = 0, wait = 0, cpu = 0;
  std::vector<double> out(spec.stages.size()), busy(spec.stages.size()), scpu(spec.stages.size());
  for (size_t k = 0; k < samples; ++k) {
    const double x = static_cast<double>(k) * spec.interval;
    const double dt = k == 0 ? 0 : spec.interval;
    const double r = ripple(k, 0);
    next += spec.outputs_per_s * dt * r;
    wait += spec.wait_per_s * dt * ripple(k, 1);
    cpu += (stage_cpu + spec.other_cpu_per_s) * dt * r;
    t.series.t.push_back(x);
    t.series.process_cpu.push_back(cpu);
    t.series.host_busy.push_back(
        std::min(1.0, (stage_cpu + spec.other_cpu_per_s) * r / spec.cores + 0.02));
    t.series.rss_bytes.push_back(800'000'000);
    t.series.disk_read_bytes.push_back(0);
    t.series.gpu_busy.push_back(spec.gpu_busy < 0 ? -1
                                                  : std::min(1.0, spec.gpu_busy * ripple(k, 2)));
    p.consumer_next.push_back(std::llround(next));
    p.consumer_wait.push_back(wait);
    for (size_t i = 0; i < spec.stages.size(); ++i) {
      const SyntheticStage& s = spec.stages[i];
      out[i] += s.out_per_s * dt * r;
      busy[i] += s.busy_per_s * dt * r;
      scpu[i] += s.cpu_per_s * dt * r;
      trace::StageSeries& ss = p.stage_series[i];
      ss.elements_out.push_back(std::llround(out[i]));
      ss.cpu_seconds.push_back(scpu[i]);
      ss.busy_seconds.push_back(busy[i]);
      ss.blocked_input_seconds.push_back(0.05 * x);
      ss.blocked_output_seconds.push_back(0.02 * x);
      ss.queue_size.push_back(
          std::llround(s.buffer_size * (0.5 + 0.4 * std::sin(0.05 * static_cast<double>(k) + i))));
    }
  }
  for (size_t i = 0; i < spec.stages.size(); ++i) {
    const SyntheticStage& s = spec.stages[i];
    trace::StageTrace st;
    st.name = s.name;
    st.op = s.op;
    st.parallelizable = s.parallelizable;
    st.parallelism = s.parallelism;
    st.buffer_size = s.buffer_size;
    st.async = s.parallelism > 1 || s.buffer_size > 0;
    st.elements_out = p.stage_series[i].elements_out.back();
    st.elements_in = i == 0 ? 0 : p.stage_series[i - 1].elements_out.back();
    st.bytes_out = st.elements_out * s.bytes_per_element;
    st.cpu_seconds = scpu[i];
    st.busy_seconds = busy[i];
    st.blocked_input_seconds = 0.05 * spec.seconds;
    st.blocked_output_seconds = 0.02 * spec.seconds;
    st.queue_mean = s.buffer_size * 0.5;
    st.queue_max = s.buffer_size;
    st.involuntary_switches = 10 * static_cast<int64_t>(i);
    p.stages.push_back(st);
  }
  p.consumer.next_calls = p.consumer_next.back();
  p.consumer.wait_seconds = wait;
  p.consumer.between_seconds = spec.seconds - wait;
  t.pipelines.push_back(p);
  if (spec.gpu_busy >= 0) {
    t.gpu.status = "ok";
    t.gpu.reason = "";
    t.gpu.device_name = "Test GPU";
    t.gpu.kernels = 1000;
    t.gpu.busy_fraction = spec.gpu_busy;
    t.gpu.kernel_busy_seconds = spec.gpu_busy * spec.seconds;
  } else {
    t.gpu.status = "no_device";
    t.gpu.reason = spec.gpu_reason;
  }
  t.tracer.interval = spec.interval;
  t.tracer.samples = static_cast<int64_t>(samples);
  t.tracer.cpu_seconds = 0.002 * spec.seconds;
  t.tracer.overhead_fraction = 0.002 / (stage_cpu + spec.other_cpu_per_s);
  t.tracer.warmup_seconds = 0.5;
  t.tracer.warmup_method = "output rate within 20% of the median";
  return t;
}

// An image pipeline whose 'decode' stage (2 workers, about 95 % busy) limits it to about 20
// batches/s while the training step could take 36: highly input-bound.
inline SyntheticSpec ImageLikeSpec() {
  SyntheticSpec spec;
  spec.stages = {
      {"files", "list_files", 1, 0, false, 640, 0.01, 0.01},
      {"read", "read_file", 1, 0, true, 640, 0.05, 0.02, 100'000},
      {"decode", "decode_jpeg", 2, 4, true, 640, 1.9, 1.85, 600'000},
      {"crop", "random_resized_crop", 1, 2, true, 640, 0.4, 0.4, 150'000},
      {"batch", "batch", 1, 0, false, 20, 0.01, 0.01, 4'800'000},
      {"prefetch", "prefetch", 1, 2, false, 20, 0.001, 0.001, 4'800'000},
  };
  spec.outputs_per_s = 20;
  spec.wait_per_s = 0.45;
  return spec;
}

// A one-hour trace sampled every 100 ms (36,001 samples per series) of 10 stages, every other
// one async on 4 workers: the size and speed case of the report's tests and its benchmark.
inline SyntheticSpec OneHourSpec() {
  SyntheticSpec spec;
  for (int s = 0; s < 10; ++s) {
    const bool async = s % 2 == 1;
    spec.stages.push_back({fmt::format("stage{}", s), s == 0 ? "generate" : "burn", async ? 4 : 1,
                           async ? 8 : 0, s > 0, 1000, 0.05 * (s + 1), 0.04 * (s + 1)});
  }
  spec.outputs_per_s = 1000;
  spec.wait_per_s = 0.1;
  spec.seconds = 3600;
  spec.gpu_busy = 0.5;
  return spec;
}

}  // namespace sluice::report::testing
