// The sluice-trace/2 reader: reads the header, the pipelines, every bucket line and only the
// full-resolution samples after the last bucket, then the last state; an incomplete last line (a
// flush cut short) is left out.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <deque>
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
// Every bucket the tracer holds, written now and then so that a reader need not go further back.
constexpr std::string_view kBucketsPrefix = R"({"chunk":"buckets","raw_end":)";

// The prefix of a bucket line (new buckets, or all of them), or an empty view.
std::string_view BucketPrefix(std::string_view text) {
  if (text.starts_with(kCoarsePrefix)) return kCoarsePrefix;
  if (text.starts_with(kBucketsPrefix)) return kBucketsPrefix;
  return {};
}
constexpr std::string_view kStatePrefix = R"({"chunk":"state",)";

struct LineRef {
  std::string_view text;
  size_t number = 0;    // 1-based; 0 when read from the end (where errors name the byte offset)
  int64_t raw_end = 0;  // samples and coarse lines
  uint64_t offset = 0;  // where it begins in the file
};

// The chunk lines a trace is made of, sorted by kind and in file order; the header apart.
struct Lines {
  LineRef header;
  std::vector<LineRef> pipelines, coarse, samples;
  std::optional<LineRef> state;     // the last one
  std::deque<std::string> storage;  // the lines' text, when read piece by piece
};

std::string Where(const std::string& origin, const LineRef& line) {
  return line.number > 0 ? fmt::format("{}:{}", origin, line.number)
                         : fmt::format("{} (the line at byte {})", origin, line.offset);
}

// `raw_end` of a samples or coarse line, read from its fixed prefix without parsing the line.
int64_t RawEnd(std::string_view line, std::string_view prefix, const std::string& where) {
  int64_t value = -1;
  const char* begin = line.data() + prefix.size();
  auto [end, ec] = std::from_chars(begin, line.data() + line.size(), value);
  if (ec != std::errc() || value < 0 || end == begin || *end != ',') {
    Fail("{}: raw_end: expected an integer >= 0", where);
  }
  return value;
}

// Files a line by its kind; false for a line that is not a chunk.
bool Classify(Lines& lines, LineRef line, const std::string& origin) {
  const std::string_view text = line.text;
  if (text.starts_with(kSamplesPrefix)) {
    line.raw_end = RawEnd(text, kSamplesPrefix, Where(origin, line));
    lines.samples.push_back(line);
  } else if (const std::string_view prefix = BucketPrefix(text); !prefix.empty()) {
    line.raw_end = RawEnd(text, prefix, Where(origin, line));
    lines.coarse.push_back(line);
  } else if (text.starts_with(kPipelinePrefix)) {
    lines.pipelines.push_back(line);
  } else if (text.starts_with(kStatePrefix)) {
    lines.state = line;
  } else if (!text.starts_with(kChunkPrefix)) {
    return false;
  }  // else a kind of chunk this reader does not know: ignored, as unknown fields are
  return true;
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
    const LineRef ref{line, number, 0, static_cast<uint64_t>(line.data() - text.data())};
    if (number == 1) {
      lines.header = ref;
    } else if (!line.empty() && !Classify(lines, ref, origin)) {
      Fail("{}:{}: not a sluice-trace/2 line (each line after the first begins {{\"chunk\":)",
           origin, number);
    }
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
  const std::string where = Where(origin, line);
  return ReadPart(ParseLimited(line.text, where), where);
}

// A pipeline line: the pipeline's name, config and class names; its index must come next.
void AddPipeline(Trace& trace, const LineRef& line, const std::string& origin) {
  const std::string where = Where(origin, line);
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

// Every column's length as the /1 reader requires it (the lines were checked one by one; this
// checks that they fit together), so that no consumer indexes past a column.
void CheckShape(const Trace& t, const std::string& origin) {
  const Series& s = t.series;
  const size_t n = s.t.size();
  const size_t merged = s.merged.size();
  auto check = [&](size_t got, size_t want, const std::string& what) {
    if (got != want) Fail("{}: {}: has {} values, expected {}", origin, what, got, want);
  };
  for (size_t len : {s.process_cpu.size(), s.host_busy.size(), s.rss_bytes.size(),
                     s.disk_read_bytes.size(), s.gpu_busy.size()}) {
    check(len, n, "series");
  }
  check(s.rss_max.size(), merged, "series.rss_max");
  if (merged > n) Fail("{}: series.merged: more merged samples than samples", origin);
  for (size_t i = 0; i < t.pipelines.size(); ++i) {
    const PipelineTrace& p = t.pipelines[i];
    const std::string at = fmt::format("pipelines[{}].series", i);
    if (p.first_index > n) Fail("{}: {}.first_index: beyond the samples", origin, at);
    const size_t len = n - p.first_index;
    const size_t coarse = merged > p.first_index ? merged - p.first_index : 0;
    check(p.consumer_next.size(), len, at + ".consumer_next");
    check(p.consumer_wait.size(), len, at + ".consumer_wait");
    if (!p.consumer_between.empty())
      check(p.consumer_between.size(), len, at + ".consumer_between");
    if (len > 0) check(p.stage_series.size(), p.stages.size(), at + ".stages");
    for (const StageSeries& st : p.stage_series) {
      for (size_t c : {st.elements_out.size(), st.cpu_seconds.size(), st.busy_seconds.size(),
                       st.blocked_input_seconds.size(), st.blocked_output_seconds.size(),
                       st.queue_size.size()}) {
        check(c, len, at + ".stages[]");
      }
      if (!st.queue_max.empty() || coarse > 0)
        check(st.queue_max.size(), coarse, at + ".queue_max");
      check(st.worker_tids.size() > 0 ? st.worker_tids.size() : st.worker_busy_seconds.size(),
            st.worker_busy_seconds.size(), at + ".stages[].worker_tids");
      for (const auto& w : st.worker_busy_seconds)
        check(w.size(), len, at + ".worker_busy_seconds");
    }
  }
}

// The trace the lines make: the header, the pipelines, every bucket (merged as the tracer did
// when it formed them), the samples after the last bucket and the last state.
Trace Assemble(const Lines& lines, const std::string& origin) {
  Trace trace = ReadLine(lines.header, origin);
  trace.format = kFormatV2;
  for (const LineRef& line : lines.pipelines) AddPipeline(trace, line, origin);
  // Every bucket, then the full-resolution samples after the last one (older samples are in
  // the buckets, so their lines are skipped unparsed).
  int64_t frontier = 0;
  // The last line of all buckets holds every one before it.
  size_t first = 0;
  for (size_t i = 0; i < lines.coarse.size(); ++i) {
    if (lines.coarse[i].text.starts_with(kBucketsPrefix)) first = i;
  }
  for (size_t i = first; i < lines.coarse.size(); ++i) {
    const LineRef& line = lines.coarse[i];
    if (line.raw_end <= frontier) {
      Fail("{}:{}: raw_end: {} does not follow {} (buckets are written in order)", origin,
           line.number, line.raw_end, frontier);
    }
    const Trace part = ReadLine(line, origin);
    if (part.series.merged.size() != part.series.t.size()) {
      Fail("{}: series.merged: a bucket line merges every sample", Where(origin, line));
    }
    // Limited as the tracer limited them when it formed each: one at a time where the limit
    // is reached on the way, else all at once (the same result, sooner).
    const auto max = static_cast<size_t>(trace.tracer.max_buckets);
    if (max == 0 || trace.series.merged.size() + part.series.t.size() <= max) {
      AppendSamples(trace, part, Where(origin, line));
    } else {
      for (size_t b = 0; b < part.series.t.size(); ++b) {
        AppendSamples(trace, SliceSamples(part, b, b + 1), Where(origin, line));
        LimitBuckets(trace, trace.series.merged.size());
      }
    }
    frontier = line.raw_end;
  }
  for (const LineRef& line : lines.samples) {
    if (line.raw_end <= frontier) continue;
    const std::string where = Where(origin, line);
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
  CheckShape(trace, origin);
  Compact(trace);
  return trace;
}

// A trace file read piece by piece with pread.
class File {
 public:
  File(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const { return size_; }

  std::string Read(uint64_t offset, size_t n) const {
    std::string out(n, '\0');
    size_t done = 0;
    while (done < n) {
      const ssize_t got =
          ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    out.resize(done);
    return out;
  }

  // The complete line that begins at `offset`, without its newline; none when no newline ends it.
  std::optional<std::string> LineAt(uint64_t offset) const {
    std::string line;
    for (size_t block = 1 << 16; offset + line.size() < size_; block *= 2) {
      const std::string more = Read(offset + line.size(), block);
      const size_t nl = more.find('\n');
      if (nl != std::string::npos) return line + more.substr(0, nl);
      if (more.empty() || line.size() + more.size() > kMaxTextBytes) break;
      line += more;
    }
    return std::nullopt;
  }

 private:
  int fd_;
  uint64_t size_;
};

// Reads the file's lines backwards from its end (its incomplete last line left out) until the
// samples already in the last bucket line are reached; files what it passes in `lines`. Returns
// false when it reaches the header (the whole file was read).
bool ScanFromTheEnd(const File& file, Lines& lines, const std::string& origin) {
  constexpr uint64_t kBlock = 4 << 20;
  uint64_t end = file.size();
  std::string carry;  // the start of a line whose end was read already
  bool first = true;
  std::vector<LineRef> found;  // newest first
  std::optional<int64_t> frontier;
  bool done = false;
  while (end > 0 && !done) {
    const uint64_t start = end > kBlock ? end - kBlock : 0;
    std::string block = file.Read(start, end - start) + carry;
    size_t stop = block.size();
    if (first) {  // what follows the last newline is a flush cut short
      const size_t nl = block.rfind('\n');
      stop = nl == std::string::npos ? 0 : nl;
      first = false;
    }
    size_t line_end = stop;
    while (!done) {
      const size_t nl = line_end == 0 ? std::string::npos : block.rfind('\n', line_end - 1);
      if (nl == std::string::npos && start > 0) break;  // the line goes on before this block
      const size_t begin = nl == std::string::npos ? 0 : nl + 1;
      const uint64_t offset = start + begin;
      if (offset == 0) return false;  // the header: every line was read
      lines.storage.push_back(block.substr(begin, line_end - begin));
      const LineRef line{lines.storage.back(), 0, 0, offset};
      const std::string_view text = line.text;
      if (text.starts_with(kSamplesPrefix) && frontier &&
          RawEnd(text, kSamplesPrefix, Where(origin, line)) <= *frontier) {
        done = true;  // this line and all before it are in the buckets
      } else if (!BucketPrefix(text).empty() && !frontier) {
        frontier = RawEnd(text, BucketPrefix(text), Where(origin, line));
        found.push_back(line);
      } else if (BucketPrefix(text).empty() && !text.starts_with(kStatePrefix)) {
        found.push_back(line);
      } else if (text.starts_with(kStatePrefix) && !lines.state) {
        lines.state = line;
      }
      if (nl == std::string::npos) break;
      line_end = nl;
    }
    carry = block.substr(0, line_end);
    end = start;
  }
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    if (!it->text.empty() && !Classify(lines, *it, origin)) {
      Fail("{}: not a sluice-trace/2 line", Where(origin, *it));
    }
  }
  return true;
}

// The lines of every bucket, found from the last one backwards by each line's `prev`, and of
// every pipeline, found by the state's `pipeline_offsets`.
void FollowOffsets(const File& file, Lines& lines, const std::string& origin) {
  const Json state = ParseLimited(lines.state->text, Where(origin, *lines.state));
  std::vector<uint64_t> offsets;
  for (const Json& o : state.value("pipeline_offsets", Json::array())) {
    offsets.push_back(o.get<uint64_t>());
  }
  std::vector<LineRef> pipelines;
  for (uint64_t o : offsets) {
    std::optional<std::string> line = file.LineAt(o);
    if (!line || !line->starts_with(kPipelinePrefix)) {
      Fail("{}: pipeline_offsets: no pipeline line at byte {}", Where(origin, *lines.state), o);
    }
    lines.storage.push_back(std::move(*line));
    pipelines.push_back({lines.storage.back(), 0, 0, o});
  }
  // Pipelines first seen after the state are in the lines read from the end.
  for (const LineRef& p : lines.pipelines) {
    if (offsets.empty() || p.offset > offsets.back()) pipelines.push_back(p);
  }
  lines.pipelines = std::move(pipelines);
  if (lines.coarse.empty()) return;
  std::vector<LineRef> chain{lines.coarse.back()};
  for (;;) {
    const LineRef& last = chain.back();
    if (last.text.starts_with(kBucketsPrefix)) break;  // it holds every bucket before it
    const Json j = ParseLimited(last.text, Where(origin, last));
    const int64_t prev = j.value("prev", int64_t{-1});
    if (prev < 0) break;
    std::optional<std::string> line = file.LineAt(static_cast<uint64_t>(prev));
    if (static_cast<uint64_t>(prev) >= last.offset || !line || BucketPrefix(*line).empty()) {
      Fail("{}: prev: no bucket line at byte {}", Where(origin, last), prev);
    }
    lines.storage.push_back(std::move(*line));
    LineRef ref{lines.storage.back(), 0, 0, static_cast<uint64_t>(prev)};
    ref.raw_end = RawEnd(ref.text, BucketPrefix(ref.text), Where(origin, ref));
    chain.push_back(ref);
  }
  lines.coarse.assign(chain.rbegin(), chain.rend());
}

}  // namespace

bool IsChunked(std::string_view text) { return text.starts_with(kHeaderPrefix); }

std::optional<Trace> ReadChunkedFromTheEnd(int fd, uint64_t size, const std::string& origin) {
  const File file(fd, size);
  Lines lines;
  std::optional<std::string> header = file.LineAt(0);
  if (!header || !IsChunked(*header)) return std::nullopt;
  lines.storage.push_back(std::move(*header));
  lines.header = {lines.storage.back(), 1, 0, 0};
  if (!ScanFromTheEnd(file, lines, origin) || !lines.state) return std::nullopt;
  FollowOffsets(file, lines, origin);
  return Assemble(lines, origin);
}

Trace ParseChunked(std::string_view text, const std::string& origin) {
  return Assemble(SplitLines(text, origin), origin);
}

}  // namespace sluice::trace::internal
