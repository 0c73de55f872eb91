// The sluice-trace/2 writer: a header line, then lines appended flush by flush (pipelines first
// seen, samples at full resolution, merged buckets, the state), each checked by the reader first.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <numeric>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/trace/chunked.h"
#include "sluice/trace/compact.h"
#include "trace/internal/json.h"

namespace sluice::trace {
namespace internal {
namespace {

// Samples merged into the first `upto` samples of `s`: the index, counting every sample ever
// taken, of the first sample after them.
// Bucket lines between two lines of all the buckets.
constexpr int64_t kAllBucketsEvery = 64;

int64_t MergedTotal(const Series& s, size_t upto) {
  return std::accumulate(s.merged.begin(), s.merged.begin() + static_cast<long>(upto), int64_t{0});
}

OrderedJson HeaderJson(const Trace& t) {
  return {{"format", kFormatV2},
          {"sluice_version", t.sluice_version},
          {"host", HostJson(t.host)},
          {"job", JobJson(t.job)},
          {"tracer", TracerJson(t.tracer)}};
}

OrderedJson PipelineLineJson(const PipelineTrace& p, size_t index) {
  OrderedJson meta{
      {"name", p.name},       {"config_path", p.config_path},   {"config_text", p.config_text},
      {"classes", p.classes}, {"first_sample", p.first_sample}, {"stages", OrderedJson::array()}};
  return {{"chunk", "pipeline"}, {"index", index}, {"pipelines", OrderedJson::array({meta})}};
}

// Samples of a SliceSamples result; `raw_end` counts every sample taken up to the last of them.
// A bucket line also says where the bucket line before it begins (`prev`, -1: none), so that a
// reader finds every bucket without reading the samples between them.
OrderedJson PartJson(const char* kind, int64_t raw_end, const Trace& part, int64_t prev = -1) {
  OrderedJson pipelines = OrderedJson::array();
  for (const PipelineTrace& p : part.pipelines) {
    OrderedJson names = OrderedJson::array();
    for (const StageTrace& s : p.stages) names.push_back({{"name", s.name}});
    pipelines.push_back({{"name", p.name}, {"stages", names}, {"series", PipelineSeriesJson(p)}});
  }
  OrderedJson out{{"chunk", kind}, {"raw_end", raw_end}};
  if (std::string_view(kind) != "samples") out["prev"] = prev;
  out["series"] = SeriesJson(part.series);
  out["pipelines"] = std::move(pipelines);
  return out;
}

// The state; `pipeline_offsets` and `coarse` say where the pipelines' lines and the last bucket
// line begin (empty, -1: unknown), for a reader that starts from the end.
OrderedJson StateJson(const Trace& t, const std::vector<int64_t>& pipeline_offsets = {},
                      int64_t coarse = -1) {
  OrderedJson pipelines = OrderedJson::array();
  for (const PipelineTrace& p : t.pipelines) pipelines.push_back(PipelineJson(p, false));
  return {{"chunk", "state"},      {"pipeline_offsets", pipeline_offsets},
          {"coarse", coarse},      {"host", HostJson(t.host)},
          {"job", JobJson(t.job)}, {"pipelines", std::move(pipelines)},
          {"gpu", GpuJson(t.gpu)}, {"tracer", TracerJson(t.tracer)}};
}

// One line, after checking that the reader accepts it.
std::string Line(const OrderedJson& j, const std::string& origin) {
  ReadPart(j, origin);
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

std::string WriteOrigin(const std::filesystem::path& path) {
  return fmt::format("{}: cannot write trace", path.string());
}

// Writes all of `text` to `fd`; false with errno set on failure.
bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string ChunkedText(const Trace& trace, const std::string& origin) {
  std::string out = Line(HeaderJson(trace), origin);
  std::vector<int64_t> pipeline_offsets;
  for (size_t i = 0; i < trace.pipelines.size(); ++i) {
    pipeline_offsets.push_back(static_cast<int64_t>(out.size()));
    out += Line(PipelineLineJson(trace.pipelines[i], i), origin);
  }
  const Series& s = trace.series;
  const size_t merged = s.merged.size();
  const int64_t base = MergedTotal(s, merged);
  int64_t coarse = -1;
  if (merged > 0) {
    coarse = static_cast<int64_t>(out.size());
    out += Line(PartJson("coarse", base, SliceSamples(trace, 0, merged)), origin);
  }
  if (s.t.size() > merged) {
    const auto raw_end = base + static_cast<int64_t>(s.t.size() - merged);
    out += Line(PartJson("samples", raw_end, SliceSamples(trace, merged, s.t.size())), origin);
  }
  return out + Line(StateJson(trace, pipeline_offsets, coarse), origin);
}

}  // namespace internal

ChunkedWriter::ChunkedWriter(std::filesystem::path path) : path_(std::move(path)) {}

ChunkedWriter::~ChunkedWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ChunkedWriter::OnBucket(const Trace& trace, size_t index) {
  pending_end_ = internal::MergedTotal(trace.series, index + 1);
  AppendSamples(pending_, SliceSamples(trace, index, index + 1), "pending buckets");
}

std::string ChunkedWriter::TakeNew(const Trace& trace) {
  const std::string origin = internal::WriteOrigin(path_);
  Written next = written_;
  std::string out;
  if (!next.header) out += internal::Line(internal::HeaderJson(trace), origin);
  next.header = true;
  for (size_t i = next.pipeline_offsets.size(); i < trace.pipelines.size(); ++i) {
    next.pipeline_offsets.push_back(bytes_ + static_cast<int64_t>(out.size()));
    out += internal::Line(internal::PipelineLineJson(trace.pipelines[i], i), origin);
  }
  if (!pending_.series.t.empty()) {
    next.last_coarse = bytes_ + static_cast<int64_t>(out.size());
    // Now and then every bucket, so that a reader following `prev` stops there.
    if (++next.coarse_lines % internal::kAllBucketsEvery == 0) {
      const Trace all = SliceSamples(trace, 0, trace.series.merged.size());
      out += internal::Line(internal::PartJson("buckets", pending_end_, all, written_.last_coarse),
                            origin);
    } else {
      out += internal::Line(
          internal::PartJson("coarse", pending_end_, pending_, written_.last_coarse), origin);
    }
  }
  const Series& s = trace.series;
  const size_t merged = s.merged.size();
  const int64_t base = internal::MergedTotal(s, merged);
  const int64_t raw_end = base + static_cast<int64_t>(s.t.size() - merged);
  // Samples merged before a flush wrote them are in the buckets' lines.
  const int64_t from = std::max(written_.raw, base);
  if (from < raw_end) {
    const size_t first = merged + static_cast<size_t>(from - base);
    out += internal::Line(
        internal::PartJson("samples", raw_end, SliceSamples(trace, first, s.t.size())), origin);
  }
  next.raw = std::max(written_.raw, raw_end);
  out +=
      internal::Line(internal::StateJson(trace, next.pipeline_offsets, next.last_coarse), origin);
  staged_ = std::move(next);
  pending_taken_ = pending_.series.t.size();
  return out;
}

void ChunkedWriter::Append(const std::string& text) {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail("{}: cannot write trace: {}", path_.string(), std::strerror(errno));
  }
  if (!internal::WriteAll(fd_, text)) {
    const int err = errno;
    // The offsets the next lines give must stay true: cut off what was written of these; a
    // file that held nothing yet is not left behind half-written.
    if (bytes_ == 0) {
      ::close(std::exchange(fd_, -1));
      ::unlink(path_.c_str());
    } else if (::ftruncate(fd_, bytes_) != 0) {
      bytes_ = ::lseek(fd_, 0, SEEK_END);
    }
    Fail("{}: cannot write trace: {}", path_.string(), std::strerror(err));
  }
  bytes_ += static_cast<int64_t>(text.size());
  written_ = std::move(staged_);
  if (pending_taken_ > 0) {
    pending_ = SliceSamples(pending_, pending_taken_, pending_.series.t.size());
    pending_taken_ = 0;
  }
}

void AppendTraceState(const Trace& trace, const std::filesystem::path& path) {
  const std::string line = internal::Line(internal::StateJson(trace), internal::WriteOrigin(path));
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) Fail("{}: cannot write trace: {}", path.string(), std::strerror(errno));
  // A flush cut short leaves a line without its newline: cut it off, or the state would join it.
  off_t end = ::lseek(fd, 0, SEEK_END);
  char c = '\n';
  while (end > 0 && ::pread(fd, &c, 1, end - 1) == 1 && c != '\n') --end;
  bool ok = end >= 0 && ::ftruncate(fd, end) == 0 && ::lseek(fd, end, SEEK_SET) == end &&
            internal::WriteAll(fd, line);
  const int err = errno;
  ::close(fd);
  if (!ok) Fail("{}: cannot write trace: {}", path.string(), std::strerror(err));
}

}  // namespace sluice::trace
