// Bounded series: merging old samples into coarse buckets (so that a day-long trace stays small
// in memory), and cutting and joining a trace's samples (so that a trace can be written and read
// in chunks). Shared by the tracer, which compacts as it samples, and the reader, which compacts a
// chunked trace the same way when it reads it.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "sluice/trace/trace.h"

namespace sluice::trace {

// Merges the first `ends.back()` samples of every series into `ends.size()` samples: sample g
// becomes the samples [ends[g-1], ends[g]) (ends[-1] = 0); `ends` increases. The samples after
// ends.back() stay as they are, merged or not. Cumulative columns keep a group's last value;
// rss_bytes, host_busy, gpu_busy and queue sizes its mean weighted by the samples merged (unknown
// -1 values left out), and the maxima columns its maximum.
void MergeGroups(Trace& trace, const std::vector<size_t>& ends);

// Applies the trace's policy (tracer.full_resolution_seconds, bucket_seconds, max_buckets): once
// the full-resolution samples span full_resolution_seconds + 6 * bucket_seconds, their oldest
// bucket_seconds at a time become buckets until they span less than full_resolution_seconds +
// bucket_seconds; `on_bucket(trace, index)` is called for each new bucket, before LimitBuckets
// limits the buckets up to it. The result depends only on the samples, not on how often it runs.
// Does nothing when the policy's bucket_seconds is 0.
void Compact(Trace& trace, const std::function<void(const Trace&, size_t)>& on_bucket = {});

// When `count` (the first buckets of the trace) exceeds tracer.max_buckets, merges adjacent
// buckets, oldest first, into groups no wider than the widest bucket (doubling that width when
// needed) until at most max_buckets remain, so that buckets keep about one width over the whole
// job; returns how many buckets they are now.
size_t LimitBuckets(Trace& trace, size_t count);

// The samples [from, to) of `trace` as a trace of their own: the series and, for every pipeline,
// its columns over that range (first_index relative to `from`, the stage names, no totals).
Trace SliceSamples(const Trace& trace, size_t from, size_t to);

// Appends the samples of `part` (a SliceSamples result, or one read back) to `trace`. Pipelines
// match by index (new ones are added); stages match by name, and a stage new in `part` reads
// zero before. Merged samples may only follow merged samples. Throws sluice::Error naming
// `origin` when `part` cannot follow `trace`.
void AppendSamples(Trace& trace, Trace part, const std::string& origin);

// Bytes the trace's series hold (their vectors' capacities), for the memory bound.
size_t SeriesBytes(const Trace& trace);

// The series of a stage that did not exist for the first `samples` samples: zeros throughout.
StageSeries ZeroStageSeries(size_t samples);

}  // namespace sluice::trace
