// Built-in sources and file reading: list_files, read_file, generate, read_throttled.
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "file_source.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// Reads a whole file into shared bytes; throws naming the path.
Bytes ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    Fail("cannot stat '{}': {}", path, std::strerror(err));
  }
  auto data = std::make_shared<std::string>();
  data->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data->size()) {
    ssize_t n = ::read(fd, data->data() + done, data->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      Fail("cannot read '{}': {}", path, std::strerror(err));
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  data->resize(done);
  ::close(fd);
  return data;
}

// Lists files matching a glob, sorted, optionally labelled by parent folder, shuffled anew each
// epoch and sharded (FileListSource).
class ListFilesOp final : public FileListSource {
 public:
  explicit ListFilesOp(OpArgs& args) : FileListSource(args) {
    std::filesystem::path pattern = args.Path("pattern");
    std::vector<std::string> files;
    glob_t g{};
    int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    if (rc != 0 && rc != GLOB_NOMATCH) args.Fail("pattern", "cannot read the directory");
    if (files.empty()) args.Fail("pattern", fmt::format("no files match '{}'", pattern.string()));
    std::sort(files.begin(), files.end());
    ClassIndex index;
    const std::string label_from = args.String("label_from", "");
    if (label_from == "parent_dir") {
      // Class index = the position of the file's parent folder name among the sorted names.
      std::vector<std::string> parents;
      for (const std::string& f : files) {
        parents.push_back(std::filesystem::path(f).parent_path().filename().string());
      }
      index = IndexClasses(parents);
    } else if (!label_from.empty()) {
      args.Fail("label_from", fmt::format("expected \"parent_dir\", got \"{}\"", label_from));
    }
    SetFiles(std::move(files), std::move(index.labels), std::move(index.classes));
  }
};
SLUICE_REGISTER_OP("list_files", ListFilesOp);

// Reads the file an element names into its bytes.
class ReadFileOp final : public MapOp {
 public:
  explicit ReadFileOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.path.empty()) Fail("the input element names no file (put list_files upstream)");
    in.bytes = ReadWholeFile(in.path);
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("read_file", ReadFileOp);

// Synthetic source: `count` elements (-1: endless) of `bytes` bytes sharing one buffer.
class GenerateOp final : public SourceOp {
 public:
  explicit GenerateOp(OpArgs& args) {
    count_ = args.Int("count", -1);
    if (count_ < -1) args.Fail("count", "expected -1 (endless) or a count >= 0");
    int64_t bytes = args.Int("bytes", 0);
    if (bytes < 0 || bytes > (int64_t{1} << 32)) args.Fail("bytes", "expected 0 to 4294967296");
    payload_ = Tensor::Allocate(DType::kUInt8, {bytes});
    std::memset(payload_.data<uint8_t>(), 0x5a, static_cast<size_t>(bytes));
  }
  OpProperties properties() const override { return {OpKind::kSource, false, true, false}; }
  void BeginEpoch(int64_t) override { produced_ = 0; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t>) const override {
    return count_ >= 0 ? std::optional<int64_t>(count_) : std::nullopt;
  }
  bool Next(Element* out, const OpContext&) override {
    if (count_ >= 0 && produced_ >= count_) return false;
    *out = Element{};
    out->tensors.push_back(payload_);
    out->id = static_cast<uint64_t>(produced_++);
    return true;
  }

 private:
  int64_t count_ = -1;
  int64_t produced_ = 0;
  Tensor payload_;
};
SLUICE_REGISTER_OP("generate", GenerateOp);

// Synthetic slow disk: `bytes` per element through a token bucket of `mb_per_s`, plus an
// optional fixed `latency_us` per read.
class ReadThrottledOp final : public SourceOp {
 public:
  explicit ReadThrottledOp(OpArgs& args) {
    int64_t bytes = args.Int("bytes");
    if (bytes < 1 || bytes > (int64_t{1} << 32)) args.Fail("bytes", "expected 1 to 4294967296");
    double mb_per_s = args.Double("mb_per_s");
    if (!(mb_per_s > 0)) args.Fail("mb_per_s", "expected a rate > 0");
    count_ = args.Int("count", -1);
    if (count_ < -1) args.Fail("count", "expected -1 (endless) or a count >= 0");
    latency_ns_ = args.Int("latency_us", 0) * 1000;
    if (latency_ns_ < 0) args.Fail("latency_us", "expected a latency >= 0");
    ns_per_element_ = static_cast<double>(bytes) / (mb_per_s * 1e6) * 1e9;
    payload_ = Tensor::Allocate(DType::kUInt8, {bytes});
    std::memset(payload_.data<uint8_t>(), 0xa5, static_cast<size_t>(bytes));
  }
  OpProperties properties() const override { return {OpKind::kSource, false, true, false}; }
  void BeginEpoch(int64_t) override { produced_ = 0; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t>) const override {
    return count_ >= 0 ? std::optional<int64_t>(count_) : std::nullopt;
  }
  bool Next(Element* out, const OpContext&) override {
    if (count_ >= 0 && produced_ >= count_) return false;
    // The bucket refills continuously; a read waits until its bytes have accrued.
    int64_t now = MonotonicNanos();
    if (next_free_ns_ < now) next_free_ns_ = static_cast<double>(now);
    next_free_ns_ += ns_per_element_;
    int64_t ready = static_cast<int64_t>(next_free_ns_) + latency_ns_;
    if (ready > now) std::this_thread::sleep_for(std::chrono::nanoseconds(ready - now));
    *out = Element{};
    out->tensors.push_back(payload_);
    out->id = static_cast<uint64_t>(produced_++);
    return true;
  }

 private:
  int64_t count_ = -1;
  int64_t produced_ = 0;
  int64_t latency_ns_ = 0;
  double ns_per_element_ = 0;
  double next_free_ns_ = 0;
  Tensor payload_;
};
SLUICE_REGISTER_OP("read_throttled", ReadThrottledOp);

}  // namespace
}  // namespace sluice::pipeline
