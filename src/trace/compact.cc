// Bounded series: old samples merged into coarse buckets, and a trace's samples cut into chunks
// and joined again (the chunked sluice-trace/2 file and the tracer's bounded memory).
#include "sluice/trace/compact.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "sluice/common/error.h"

namespace sluice::trace {
namespace {

// The groups of MergeGroups as a column starting at global sample `first` sees them.
struct LocalGroups {
  std::vector<size_t> ends;  // local ends of the groups that reach the column
  size_t skipped = 0;        // groups that end before the column starts
  size_t upto = 0;           // local index where the untouched samples begin
};

LocalGroups Localize(const std::vector<size_t>& ends, size_t first) {
  LocalGroups g;
  for (size_t e : ends) {
    if (e <= first) {
      ++g.skipped;
    } else {
      g.ends.push_back(e - first);
    }
  }
  g.upto = ends.back() > first ? ends.back() - first : 0;
  return g;
}

template <typename T>
void Tail(const std::vector<T>& v, size_t from, std::vector<T>& out) {
  if (from < v.size()) out.insert(out.end(), v.begin() + static_cast<long>(from), v.end());
}

// Cumulative columns: a group keeps its last value.
template <typename T>
void Last(std::vector<T>& v, const LocalGroups& g) {
  if (v.empty()) return;
  std::vector<T> out;
  out.reserve(g.ends.size() + v.size() - std::min(v.size(), g.upto));
  for (size_t e : g.ends) out.push_back(v[std::min(e, v.size()) - 1]);
  Tail(v, g.upto, out);
  v = std::move(out);
}

// Instantaneous and interval columns: a group keeps its mean, each sample weighted by the samples
// it merges; negative values (-1: unknown) are left out, and a group of unknowns stays -1.
template <typename T>
void Mean(std::vector<T>& v, const LocalGroups& g, const std::vector<int64_t>& weights) {
  if (v.empty()) return;
  std::vector<T> out;
  out.reserve(g.ends.size() + v.size() - std::min(v.size(), g.upto));
  size_t b = 0;
  for (size_t e : g.ends) {
    double sum = 0, n = 0;
    for (size_t i = b; i < e && i < v.size(); ++i) {
      if (v[i] < 0) continue;
      sum += static_cast<double>(v[i]) * static_cast<double>(weights[i]);
      n += static_cast<double>(weights[i]);
    }
    if constexpr (std::is_integral_v<T>) {
      out.push_back(n > 0 ? static_cast<T>(std::llround(sum / n)) : T{-1});
    } else {
      out.push_back(n > 0 ? sum / n : T{-1});
    }
    b = e;
  }
  Tail(v, g.upto, out);
  v = std::move(out);
}

// The maxima column of `v` (one value per merged sample): each group's greatest value, a merged
// sample counting with its own maximum.
template <typename T>
std::vector<T> Max(const std::vector<T>& v, const std::vector<T>& maxima, const LocalGroups& g) {
  std::vector<T> out;
  out.reserve(g.ends.size());
  size_t b = 0;
  for (size_t e : g.ends) {
    T m = T{-1};
    for (size_t i = b; i < e && i < v.size(); ++i) {
      m = std::max(m, i < maxima.size() ? maxima[i] : v[i]);
    }
    out.push_back(m);
    b = e;
  }
  Tail(maxima, g.upto, out);  // merged samples after the groups keep theirs
  return out;
}

void MergeStage(StageSeries& s, const LocalGroups& g, const std::vector<int64_t>& weights) {
  if (!s.queue_size.empty()) s.queue_max = Max(s.queue_size, s.queue_max, g);
  Last(s.elements_out, g);
  Last(s.cpu_seconds, g);
  Last(s.busy_seconds, g);
  Last(s.blocked_input_seconds, g);
  Last(s.blocked_output_seconds, g);
  Mean(s.queue_size, g, weights);
  for (auto& w : s.worker_busy_seconds) Last(w, g);
}

template <typename T>
void AppendRange(std::vector<T>& out, const std::vector<T>& v, size_t from, size_t to) {
  from = std::min(from, v.size());
  to = std::min(to, v.size());
  if (from < to) {
    out.insert(out.end(), v.begin() + static_cast<long>(from), v.begin() + static_cast<long>(to));
  }
}

template <typename T>
std::vector<T> Range(const std::vector<T>& v, size_t from, size_t to) {
  std::vector<T> out;
  AppendRange(out, v, from, to);
  return out;
}

template <typename T>
void Append(std::vector<T>& out, const std::vector<T>& v) {
  out.insert(out.end(), v.begin(), v.end());
}

// Extends `v` to `n` values with `fill` (columns that begin later than their pipeline).
template <typename T>
void PadTo(std::vector<T>& v, size_t n, T fill) {
  if (v.size() < n) v.resize(n, fill);
}

}  // namespace

void MergeGroups(Trace& trace, const std::vector<size_t>& ends) {
  if (ends.empty()) return;
  Series& s = trace.series;
  const size_t upto = ends.back();
  std::vector<int64_t> weights(upto, 1);
  for (size_t i = 0; i < upto && i < s.merged.size(); ++i) weights[i] = s.merged[i];
  const LocalGroups g = Localize(ends, 0);
  std::vector<int64_t> merged;
  size_t b = 0;
  for (size_t e : ends) {
    int64_t n = 0;
    for (size_t i = b; i < e; ++i) n += weights[i];
    merged.push_back(n);
    b = e;
  }
  Tail(s.merged, upto, merged);
  s.rss_max = Max(s.rss_bytes, s.rss_max, g);
  Last(s.t, g);
  Last(s.process_cpu, g);
  Mean(s.host_busy, g, weights);
  Mean(s.rss_bytes, g, weights);
  Last(s.disk_read_bytes, g);
  Mean(s.gpu_busy, g, weights);
  s.merged = std::move(merged);
  for (PipelineTrace& p : trace.pipelines) {
    const size_t first = p.first_index;
    const LocalGroups lg = Localize(ends, first);
    std::vector<int64_t> local(lg.upto, 1);
    for (size_t i = 0; i < lg.upto; ++i) local[i] = weights[i + first];
    Last(p.consumer_next, lg);
    Last(p.consumer_wait, lg);
    Last(p.consumer_between, lg);
    for (StageSeries& st : p.stage_series) MergeStage(st, lg, local);
    p.first_index = lg.skipped + (first > upto ? first - upto : 0);
  }
}

size_t LimitBuckets(Trace& trace, size_t count) {
  const int64_t max = trace.tracer.max_buckets;
  if (max <= 0 || count <= static_cast<size_t>(max)) return count;
  // Adjacent buckets merge, oldest first, into groups no wider (in samples) than the widest
  // bucket, so that the widths even out and the whole job keeps one resolution (merging every
  // pair each time would double the oldest buckets' width at every limit, until the first one
  // spans hours); when that is not enough, the width allowed doubles.
  const std::vector<int64_t>& m = trace.series.merged;
  int64_t widest = *std::max_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(count));
  for (;;) {
    std::vector<size_t> ends;
    int64_t width = 0;
    for (size_t k = 0; k < count; ++k) {
      if (width > 0 && width + m[k] > widest) {
        ends.push_back(k);
        width = 0;
      }
      width += m[k];
    }
    ends.push_back(count);
    if (ends.size() <= static_cast<size_t>(max)) {
      MergeGroups(trace, ends);
      return ends.size();
    }
    widest *= 2;
  }
}

void Compact(Trace& trace, const std::function<void(const Trace&, size_t)>& on_bucket) {
  const TracerCost& policy = trace.tracer;
  if (policy.bucket_seconds <= 0) return;
  const std::vector<double>& t = trace.series.t;
  const double keep = policy.full_resolution_seconds + policy.bucket_seconds;
  const size_t first = trace.series.merged.size();
  // Buckets form a batch at a time (when kBatch of them are due), so that the samples after
  // them move once per batch, not once per bucket.
  constexpr double kBatch = 6;
  if (first >= t.size() ||
      t.back() - t[first] < policy.full_resolution_seconds + kBatch * policy.bucket_seconds) {
    return;
  }
  std::vector<size_t> ends;
  for (size_t k = 1; k <= first; ++k) ends.push_back(k);
  for (size_t pos = first; pos < t.size() && t.back() - t[pos] >= keep;) {
    size_t end = pos + 1;
    while (end < t.size() && t[end] < t[pos] + policy.bucket_seconds) ++end;
    ends.push_back(end);
    pos = end;
  }
  const size_t formed = ends.size() - first;
  MergeGroups(trace, ends);
  // Each new bucket as if it had formed alone (so that a reader appending them one at a time
  // gets the same buckets): reported, then the buckets up to it limited.
  size_t index = first;
  for (size_t i = 0; i < formed; ++i) {
    if (on_bucket) on_bucket(trace, index);
    index = LimitBuckets(trace, index + 1);
  }
}

Trace SliceSamples(const Trace& trace, size_t from, size_t to) {
  const Series& s = trace.series;
  to = std::min(to, s.t.size());
  from = std::min(from, to);
  Trace out;
  out.format = trace.format;
  Series& o = out.series;
  o.t = Range(s.t, from, to);
  o.process_cpu = Range(s.process_cpu, from, to);
  o.host_busy = Range(s.host_busy, from, to);
  o.rss_bytes = Range(s.rss_bytes, from, to);
  o.disk_read_bytes = Range(s.disk_read_bytes, from, to);
  o.gpu_busy = Range(s.gpu_busy, from, to);
  o.merged = Range(s.merged, from, to);
  o.rss_max = Range(s.rss_max, from, to);
  for (const PipelineTrace& p : trace.pipelines) {
    PipelineTrace& q = out.pipelines.emplace_back();
    q.name = p.name;
    const size_t f = p.first_index;
    const size_t lb = std::max(from, f) - f;
    const size_t le = std::max(to, f) - f;
    q.first_index = std::min(std::max(f, from), to) - from;
    q.consumer_next = Range(p.consumer_next, lb, le);
    q.consumer_wait = Range(p.consumer_wait, lb, le);
    q.consumer_between = Range(p.consumer_between, lb, le);
    for (size_t i = 0; i < p.stage_series.size(); ++i) {
      q.stages.emplace_back().name = i < p.stages.size() ? p.stages[i].name : "";
      const StageSeries& ss = p.stage_series[i];
      StageSeries& qs = q.stage_series.emplace_back();
      qs.elements_out = Range(ss.elements_out, lb, le);
      qs.cpu_seconds = Range(ss.cpu_seconds, lb, le);
      qs.busy_seconds = Range(ss.busy_seconds, lb, le);
      qs.blocked_input_seconds = Range(ss.blocked_input_seconds, lb, le);
      qs.blocked_output_seconds = Range(ss.blocked_output_seconds, lb, le);
      qs.queue_size = Range(ss.queue_size, lb, le);
      qs.queue_max = Range(ss.queue_max, lb, le);
      qs.worker_tids = ss.worker_tids;
      for (const auto& w : ss.worker_busy_seconds)
        qs.worker_busy_seconds.push_back(Range(w, lb, le));
    }
  }
  return out;
}

namespace {

// Puts `p`'s stage series in the order of `names`, a stage it did not have reading zero over its
// `len` samples so far.
void AlignStages(PipelineTrace& p, const std::vector<StageTrace>& names, size_t len) {
  const bool same = p.stages.size() == names.size() &&
                    std::equal(p.stages.begin(), p.stages.end(), names.begin(),
                               [](const auto& a, const auto& b) { return a.name == b.name; });
  if (same && p.stage_series.size() == names.size()) return;
  std::vector<StageTrace> stages;
  std::vector<StageSeries> series;
  std::vector<bool> used(p.stages.size(), false);  // a name given twice matches two stages
  for (const StageTrace& n : names) {
    size_t i = 0;
    while (i < p.stages.size() && (used[i] || p.stages[i].name != n.name)) ++i;
    if (i < p.stages.size() && i < p.stage_series.size()) {
      used[i] = true;
      stages.push_back(std::move(p.stages[i]));
      series.push_back(std::move(p.stage_series[i]));
      continue;
    }
    stages.push_back(n);
    series.push_back(ZeroStageSeries(len));
  }
  p.stages = std::move(stages);
  p.stage_series = std::move(series);
}

void AppendStage(StageSeries& s, const StageSeries& q, size_t len, size_t added) {
  Append(s.elements_out, q.elements_out);
  Append(s.cpu_seconds, q.cpu_seconds);
  Append(s.busy_seconds, q.busy_seconds);
  Append(s.blocked_input_seconds, q.blocked_input_seconds);
  Append(s.blocked_output_seconds, q.blocked_output_seconds);
  Append(s.queue_size, q.queue_size);
  Append(s.queue_max, q.queue_max);
  // Workers only ever appear: a new one reads zero before, and one missing from `q` keeps its
  // last value.
  const size_t workers = std::max(s.worker_busy_seconds.size(), q.worker_busy_seconds.size());
  s.worker_busy_seconds.resize(workers, std::vector<double>(len, 0.0));
  s.worker_tids.resize(std::max(s.worker_tids.size(), workers), 0);
  for (size_t w = 0; w < workers; ++w) {
    auto& col = s.worker_busy_seconds[w];
    if (w < q.worker_busy_seconds.size()) {
      Append(col, q.worker_busy_seconds[w]);
    } else {
      PadTo(col, len + added, col.empty() ? 0.0 : col.back());
    }
    if (w < q.worker_tids.size() && q.worker_tids[w] != 0) s.worker_tids[w] = q.worker_tids[w];
  }
}

}  // namespace

void AppendSamples(Trace& trace, Trace part, const std::string& origin) {
  Series& s = trace.series;
  const Series& q = part.series;
  const size_t n = s.t.size();
  if (!q.merged.empty() && s.merged.size() != n) {
    Fail("{}: merged samples cannot follow samples at full resolution", origin);
  }
  if (n > 0 && !q.t.empty() && q.t.front() < s.t.back()) {
    Fail("{}: series.t[0]: sample times must not decrease ({} after {})", origin, q.t.front(),
         s.t.back());
  }
  Append(s.t, q.t);
  Append(s.process_cpu, q.process_cpu);
  Append(s.host_busy, q.host_busy);
  Append(s.rss_bytes, q.rss_bytes);
  Append(s.disk_read_bytes, q.disk_read_bytes);
  Append(s.gpu_busy, q.gpu_busy);
  Append(s.merged, q.merged);
  Append(s.rss_max, q.rss_max);
  for (size_t i = 0; i < part.pipelines.size(); ++i) {
    if (i >= trace.pipelines.size()) {
      trace.pipelines.emplace_back().name = part.pipelines[i].name;
      trace.pipelines.back().first_index = n;
    }
    PipelineTrace& p = trace.pipelines[i];
    const PipelineTrace& qp = part.pipelines[i];
    const size_t len = p.consumer_next.size();
    if (len == 0) {
      p.first_index = n + qp.first_index;
    } else if (qp.first_index != 0) {
      Fail("{}: pipelines[{}].series.first_index: {} for a pipeline that has samples before",
           origin, i, qp.first_index);
    }
    AlignStages(p, qp.stages, len);
    const size_t added = qp.consumer_next.size();
    Append(p.consumer_next, qp.consumer_next);
    Append(p.consumer_wait, qp.consumer_wait);
    if (!qp.consumer_between.empty() || !p.consumer_between.empty()) {
      PadTo(p.consumer_between, len, 0.0);
      Append(p.consumer_between, qp.consumer_between);
      PadTo(p.consumer_between, len + added,
            p.consumer_between.empty() ? 0.0 : p.consumer_between.back());
    }
    for (size_t k = 0; k < p.stage_series.size() && k < qp.stage_series.size(); ++k) {
      AppendStage(p.stage_series[k], qp.stage_series[k], len, added);
    }
  }
}

size_t SeriesBytes(const Trace& trace) {
  auto bytes = [](const auto& v) { return v.capacity() * sizeof(v[0]); };
  const Series& s = trace.series;
  size_t total = bytes(s.t) + bytes(s.process_cpu) + bytes(s.host_busy) + bytes(s.rss_bytes) +
                 bytes(s.disk_read_bytes) + bytes(s.gpu_busy) + bytes(s.merged) + bytes(s.rss_max);
  for (const PipelineTrace& p : trace.pipelines) {
    total += bytes(p.consumer_next) + bytes(p.consumer_wait) + bytes(p.consumer_between);
    for (const StageSeries& st : p.stage_series) {
      total += bytes(st.elements_out) + bytes(st.cpu_seconds) + bytes(st.busy_seconds) +
               bytes(st.blocked_input_seconds) + bytes(st.blocked_output_seconds) +
               bytes(st.queue_size) + bytes(st.queue_max);
      for (const auto& w : st.worker_busy_seconds) total += bytes(w);
    }
  }
  return total;
}

StageSeries ZeroStageSeries(size_t samples) {
  StageSeries s;
  s.elements_out.assign(samples, 0);
  s.cpu_seconds.assign(samples, 0.0);
  s.busy_seconds.assign(samples, 0.0);
  s.blocked_input_seconds.assign(samples, 0.0);
  s.blocked_output_seconds.assign(samples, 0.0);
  s.queue_size.assign(samples, 0);
  return s;
}

}  // namespace sluice::trace
