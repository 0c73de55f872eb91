// What the trace's JSON reader, its SAX size limiter and its writer share: the two document
// types, the limits a trace may claim, and the calls between the three files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/trace/trace.h"

namespace sluice::trace::internal {

// The writer keeps the documented key order.
using OrderedJson = nlohmann::ordered_json;
// The reader parses into std::map objects: ordered_json's objects are vectors searched
// linearly, which an object with a million keys would make quadratic. Order means nothing to a
// reader.
using Json = nlohmann::json;

// Limits on what a trace may claim, checked before anything is allocated for it. A one-hour
// trace at 100 ms has 36,000 samples; ten million is over eleven days.
inline constexpr size_t kMaxSamples = 10'000'000;
inline constexpr size_t kMaxPipelines = 10'000;
inline constexpr size_t kMaxStages = 10'000;
inline constexpr size_t kMaxWorkers = 4096;
inline constexpr int kMaxBufferSize = 1 << 24;  // what a config may ask for (config/document.cc)
inline constexpr size_t kMaxDisks = 4096;
inline constexpr size_t kMaxClasses = 1 << 20;  // class names of a labelled source
inline constexpr size_t kMaxRetunes = 1 << 20;  // re-tunes of one autotuned pipeline
inline constexpr size_t kMaxTextBytes = size_t{2} << 30;
// No array in a trace is longer than a series column, and none nests deeper than a few levels;
// the limits stop a hostile document before it is built, not after.
inline constexpr size_t kMaxArrayElements = kMaxSamples;
inline constexpr size_t kMaxDepth = 128;

// Converts a parsed document (Json when reading, OrderedJson when checking what the writer
// built) into a Trace, failing with "<origin>: <path>: <what>" on the first value it cannot
// accept.
Trace ReadDocument(const Json& root, const std::string& origin);
Trace ReadDocument(const OrderedJson& root, const std::string& origin);

// Parses `text` as nlohmann's DOM parser does, but refuses arrays longer and nesting deeper than
// the limits above while parsing. Fails with "ORIGIN:LINE:COL: invalid JSON: REASON" on a syntax
// error and "ORIGIN: PATH: WHAT" past a limit.
Json ParseLimited(std::string_view text, const std::string& origin);

// ReadDocument for a part of a trace (a line of a sluice-trace/2 file): no "format" is required,
// and neither is "pipelines"; a pipeline's stages may be names alone.
Trace ReadPart(const Json& root, const std::string& origin);
Trace ReadPart(const OrderedJson& root, const std::string& origin);

// The writer's pieces, one per object of the document (json_writer.cc), shared with the chunked
// writer.
OrderedJson StageJson(const StageTrace& s);
OrderedJson RetuneJson(const Retune& r);
// `whole`: with its config and series; without them, the pipeline's totals (a state line).
OrderedJson PipelineJson(const PipelineTrace& p, bool whole);
OrderedJson PipelineSeriesJson(const PipelineTrace& p);
OrderedJson HostJson(const HostInfo& host);
OrderedJson JobJson(const JobInfo& job);
OrderedJson SeriesJson(const Series& s);
OrderedJson GpuJson(const GpuTrace& g);
OrderedJson TracerJson(const TracerCost& c);

// The whole trace as sluice-trace/2 text (chunked.cc), checked as the writer checks /1 text.
std::string ChunkedText(const Trace& trace, const std::string& origin);
// Whether `text` is sluice-trace/2: its first line begins {"format":"sluice-trace/2".
bool IsChunked(std::string_view text);
// Parses sluice-trace/2 text (JSON Lines); `origin` names the file, errors add the line.
Trace ParseChunked(std::string_view text, const std::string& origin);
// Reads a sluice-trace/2 file of `size` bytes from its end: the last state, the samples after
// the last bucket line and, by the offsets the lines give, the buckets and pipelines; nothing in
// between. No value when the file is not laid out for it (no state line; the lines from the end
// reach the start); then ParseChunked reads it whole. Throws sluice::Error on what it cannot
// read.
std::optional<Trace> ReadChunkedFromTheEnd(int fd, uint64_t size, const std::string& origin);

}  // namespace sluice::trace::internal
