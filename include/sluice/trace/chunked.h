// Writing a trace as the chunked sluice-trace/2 file (JSON Lines, docs/trace-format.md), one
// flush at a time: each flush appends only what is new, so its cost does not grow with the trace,
// and a job killed mid-write leaves every complete line readable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sluice/trace/trace.h"

namespace sluice::trace {

class ChunkedWriter {
 public:
  // Writes to `path`, which the first Append creates (or empties).
  explicit ChunkedWriter(std::filesystem::path path);
  ~ChunkedWriter();
  ChunkedWriter(const ChunkedWriter&) = delete;
  ChunkedWriter& operator=(const ChunkedWriter&) = delete;

  // Remembers the bucket that Compact formed at `index` of `trace` (give it as Compact's
  // on_bucket), for the next flush to write.
  void OnBucket(const Trace& trace, size_t index);

  // The lines the next flush appends for `trace`: the header (first flush), pipelines first seen,
  // the buckets formed since, samples not written yet, and the state (totals, job, GPU, tracer).
  // Append must write them next (they count as written once it has). Throws sluice::Error
  // naming the field when `trace` holds what the reader would reject.
  std::string TakeNew(const Trace& trace);

  // Appends `text` to the file in one write (the first creates or empties the file). Throws
  // sluice::Error naming the path; the file is then cut back to what it held (removed when that
  // was nothing), so that it stays readable, and the next TakeNew takes the lines again.
  void Append(const std::string& text);

  // Bytes appended so far.
  int64_t bytes_written() const { return bytes_; }

 private:
  // What the file holds so far; TakeNew stages the next values, and Append keeps them only when
  // the lines reach the file, so that a failed write is tried again at the next flush.
  struct Written {
    bool header = false;
    std::vector<int64_t> pipeline_offsets;  // where each pipeline's line begins
    int64_t raw = 0;           // samples written at full resolution (counting from the first)
    int64_t last_coarse = -1;  // where the last bucket line begins
    int64_t coarse_lines = 0;  // bucket lines written
  };

  std::filesystem::path path_;
  int fd_ = -1;
  Written written_;
  Written staged_;
  Trace pending_;             // buckets formed and not written yet
  int64_t pending_end_ = 0;   // samples merged into every bucket up to the last pending one
  size_t pending_taken_ = 0;  // pending buckets in the lines TakeNew returned
  int64_t bytes_ = 0;         // the file's size
};

// Appends the state of `trace` (its job, totals, GPU and tracer figures) to the sluice-trace/2
// file at `path`, first cutting off an incomplete last line (a job killed mid-write), so that a
// reader takes the job's end from it. Throws sluice::Error naming the path.
void AppendTraceState(const Trace& trace, const std::filesystem::path& path);

}  // namespace sluice::trace
