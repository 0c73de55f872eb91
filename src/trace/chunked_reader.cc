// The sluice-trace/2 reader: reads the header, the pipelines, every bucket line and only the
// full-resolution samples after the last bucket, then the last state; an incomplete last line (a
// flush cut short) is left out.
#include <charconv>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/trace/compact.h"
#include "trace/internal/json.h"

namespace sluice::trace::internal {
namespace {

constexpr std::string_view kHeaderPrefix = R"({"format":"sluice-trace/2")";
constexpr std::string_view kChunkPrefix = R"({"chunk":)";
constexpr std::string_view kPipelinePrefix = R"({"chunk":"pipeline",)";
constexpr std::string_view kSamplesPrefix = R"({"chunk":"samples","raw_end":)";
constexpr std::string_view kCoarsePrefix = R"({"chunk":"coarse","raw_end":)";
constexpr std::string_view kStatePrefix = R"({"chunk":"state",)";

struct LineRef {
  std::string_view text;
  size_t number = 0;    // 1-based
  int64_t raw_end = 0;  // samples and coarse lines
};

// The chunk lines of a file, sorted by kind; the header apart.
struct Lines {
  LineRef header;
  std::vector<LineRef> pipelines, coarse, samples;
  std::optional<LineRef> state;  // the last one
};

// `raw_end` of a samples or coarse line, read from its fixed prefix without parsing the line.
int64_t RawEnd(std::string_view line, std::string_view prefix, size_t number,
               const std::string& origin) {
  int64_t value = -1;
  const char* begin = line.data() + prefix.size();
  auto [end, ec] = std::from_chars(begin, line.data() + line.size(), value);
  if (ec != std::errc() || value < 0 || end == begin || *end != ',') {
    Fail("{}:{}: raw_end: expected an integer >= 0", origin, number);
  }
  return value;
}

Lines SplitLines(std::string_view text, const std::string& origin) {
  Lines lines;
  size_t pos = 0, number = 0;
  for (;;) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;  // an incomplete last line: a flush cut short
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    if (number == 1) {
      lines.header = {line, number, 0};
    } else if (line.empty()) {
      continue;
    } else if (line.starts_with(kSamplesPrefix)) {
      lines.samples.push_back({line, number, RawEnd(line, kSamplesPrefix, number, origin)});
    } else if (line.starts_with(kCoarsePrefix)) {
      lines.coarse.push_back({line, number, RawEnd(line, kCoarsePrefix, number, origin)});
    } else if (line.starts_with(kPipelinePrefix)) {
      lines.pipelines.push_back({line, number, 0});
    } else if (line.starts_with(kStatePrefix)) {
      lines.state = LineRef{line, number, 0};
    } else if (!line.starts_with(kChunkPrefix)) {
      Fail("{}:{}: not a sluice-trace/2 line (each line after the first begins {{\"chunk\":)",
           origin, number);
    }  // else a kind of chunk this reader does not know: ignored, as unknown fields are
  }
  if (number == 0) {
    Fail(
        "{}: not a sluice trace (a sluice-trace/2 file is JSON Lines, and its first line is not "
        "complete)",
        origin);
  }
  return lines;
}

Trace ReadLine(const LineRef& line, const std::string& origin) {
  const std::string where = fmt::format("{}:{}", origin, line.number);
  return ReadPart(ParseLimited(line.text, where), where);
}

// A pipeline line: the pipeline's name, config and class names; its index must come next.
void AddPipeline(Trace& trace, const LineRef& line, const std::string& origin) {
  const std::string where = fmt::format("{}:{}", origin, line.number);
  const Json j = ParseLimited(line.text, where);
  const auto index = j.find("index");
  if (index == j.end() || !index->is_number_unsigned() ||
      index->get<uint64_t>() != trace.pipelines.size()) {
    Fail("{}: index: expected {} (pipelines are listed in order)", where, trace.pipelines.size());
  }
  Trace part = ReadPart(j, where);
  if (part.pipelines.size() != 1) Fail("{}: pipelines: expected one pipeline", where);
  trace.pipelines.push_back(std::move(part.pipelines[0]));
}

// Totals, job, GPU and tracer figures from the last state line.
void ApplyState(Trace& trace, Trace state) {
  trace.host = std::move(state.host);
  trace.job = std::move(state.job);
  trace.gpu = std::move(state.gpu);
  trace.tracer = std::move(state.tracer);
  for (size_t i = 0; i < trace.pipelines.size() && i < state.pipelines.size(); ++i) {
    PipelineTrace& p = trace.pipelines[i];
    PipelineTrace& q = state.pipelines[i];
    p.name = q.name;
    p.epochs_completed = q.epochs_completed;
    p.finished = q.finished;
    p.closed = q.closed;
    p.first_sample = q.first_sample;
    p.consumer = q.consumer;
    p.retunes = std::move(q.retunes);
    if (p.stages.empty()) {
      p.stages = std::move(q.stages);
      continue;
    }
    for (StageTrace& s : p.stages) {
      for (StageTrace& totals : q.stages) {
        if (totals.name == s.name) s = totals;
      }
    }
  }
}

}  // namespace

bool IsChunked(std::string_view text) { return text.starts_with(kHeaderPrefix); }

Trace ParseChunked(std::string_view text, const std::string& origin) {
  const Lines lines = SplitLines(text, origin);
  Trace trace = ReadLine(lines.header, origin);
  trace.format = kFormatV2;
  for (const LineRef& line : lines.pipelines) AddPipeline(trace, line, origin);
  // Every bucket, then the full-resolution samples after the last one (older samples are in
  // the buckets, so their lines are skipped unparsed).
  int64_t frontier = 0;
  for (const LineRef& line : lines.coarse) {
    if (line.raw_end <= frontier) {
      Fail("{}:{}: raw_end: {} does not follow {} (buckets are written in order)", origin,
           line.number, line.raw_end, frontier);
    }
    AppendSamples(trace, ReadLine(line, origin), fmt::format("{}:{}", origin, line.number));
    // As the tracer did when it formed this bucket.
    LimitBuckets(trace, trace.series.merged.size());
    frontier = line.raw_end;
  }
  for (const LineRef& line : lines.samples) {
    if (line.raw_end <= frontier) continue;
    const std::string where = fmt::format("{}:{}", origin, line.number);
    Trace part = ReadLine(line, origin);
    if (!part.series.merged.empty()) Fail("{}: series.merged: a samples line merges none", where);
    const auto count = static_cast<int64_t>(part.series.t.size());
    const int64_t begin = line.raw_end - count;
    if (begin < frontier) {
      part = SliceSamples(part, static_cast<size_t>(frontier - begin), part.series.t.size());
    }
    AppendSamples(trace, std::move(part), where);
    frontier = line.raw_end;
  }
  const size_t samples = trace.series.t.size();
  if (lines.state) {
    ApplyState(trace, ReadLine(*lines.state, origin));
  } else {
    // Killed before its first state: the samples are all there is.
    trace.job.cut_short = true;
    trace.job.end_reason = "in progress";
    trace.job.duration = samples > 0 ? trace.series.t.back() : 0.0;
    trace.tracer.samples = frontier;
  }
  for (PipelineTrace& p : trace.pipelines) {
    if (p.consumer_next.empty()) p.first_index = samples;
  }
  Compact(trace);
  return trace;
}

}  // namespace sluice::trace::internal
