// The cache op: the first full epoch passes through and is recorded, later epochs replay it
// from memory or from a file (which also serves later runs) without running upstream stages.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/common/files.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'C', 'A', 'C', 'H', 'E', '1'};
constexpr uint64_t kEndMarker = 0x444e45454843414cULL;  // written after the last record

// Minimal binary writer/reader over stdio with errors that name the file.
class CacheFile {
 public:
  // Reads `path`.
  explicit CacheFile(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) Fail("cache file '{}': {}", path, std::strerror(errno));
  }
  // Records into a temporary file beside `path` that Commit() renames into place; destroyed
  // before, it leaves nothing behind.
  static std::unique_ptr<CacheFile> Record(const std::string& path) {
    // No fsync: a torn file lacks the end marker that IsCompleteCacheFile checks, and a sync of
    // a whole epoch's recording would stall the pipeline.
    AtomicWriteOptions options;
    options.temp_tag = "partial";
    options.sync = false;
    std::unique_ptr<AtomicFile> atomic;
    try {
      atomic = std::make_unique<AtomicFile>(path, options);
    } catch (const AtomicWriteError& e) {
      Fail("cache file '{}': {}", e.temp_path().string(), e.reason());
    }
    std::unique_ptr<CacheFile> f(new CacheFile());
    f->path_ = atomic->temp_path().string();
    const int fd = ::dup(atomic->fd());
    f->file_ = fd < 0 ? nullptr : ::fdopen(fd, "wb");
    if (f->file_ == nullptr) {
      const int err = errno;
      if (fd >= 0) ::close(fd);
      Fail("cache file '{}': {}", f->path_, std::strerror(err));
    }
    f->atomic_ = std::move(atomic);
    return f;
  }
  ~CacheFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  void Write(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, file_) != n) {
      Fail("cache file '{}': write failed: {}", path_, std::strerror(errno));
    }
  }
  template <typename T>
  void Put(T v) {
    Write(&v, sizeof v);
  }
  // False at a clean end of file; throws on a truncated record.
  bool Read(void* data, size_t n, bool eof_ok = false) {
    size_t got = n == 0 ? 0 : std::fread(data, 1, n, file_);
    if (got == n) return true;
    if (eof_ok && got == 0 && std::feof(file_)) return false;
    Fail("cache file '{}' is truncated or unreadable", path_);
  }
  template <typename T>
  T Get() {
    T v{};
    Read(&v, sizeof v);
    return v;
  }
  void Close() {
    if (std::fclose(file_) != 0) {
      file_ = nullptr;
      Fail("cache file '{}': {}", path_, std::strerror(errno));
    }
    file_ = nullptr;
  }
  // Closes the recording and renames it into place.
  void Commit() {
    Close();
    try {
      atomic_->Commit();
    } catch (const AtomicWriteError& e) {
      Fail("cache file '{}': cannot rename from '{}': {}", atomic_->path().string(), path_,
           e.reason());
    }
  }

 private:
  CacheFile() = default;

  std::string path_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<AtomicFile> atomic_;  // set while recording
};

void WriteElement(CacheFile& f, const Element& e) {
  f.Put<uint8_t>(1);  // a record follows
  f.Put<uint64_t>(e.id);
  f.Put<uint32_t>(static_cast<uint32_t>(e.path.size()));
  f.Write(e.path.data(), e.path.size());
  uint64_t nbytes = e.bytes ? e.bytes->size() : UINT64_MAX;
  f.Put<uint64_t>(nbytes);
  if (e.bytes) f.Write(e.bytes->data(), e.bytes->size());
  f.Put<uint32_t>(static_cast<uint32_t>(e.tensors.size()));
  for (const Tensor& t : e.tensors) {
    f.Put<uint8_t>(static_cast<uint8_t>(t.dtype()));
    f.Put<uint32_t>(static_cast<uint32_t>(t.rank()));
    for (int64_t d : t.shape()) f.Put<int64_t>(d);
    f.Write(t.data<uint8_t>(), t.byte_size());
  }
}

// Reads one element; false at the end marker.
bool ReadElement(CacheFile& f, Element* e) {
  if (f.Get<uint8_t>() == 0) return false;  // the trailer: count and end marker follow
  *e = Element{};
  e->id = f.Get<uint64_t>();
  e->path.resize(f.Get<uint32_t>());
  f.Read(e->path.data(), e->path.size());
  auto nbytes = f.Get<uint64_t>();
  if (nbytes != UINT64_MAX) {
    auto bytes = std::make_shared<std::string>(nbytes, '\0');
    f.Read(bytes->data(), nbytes);
    e->bytes = std::move(bytes);
  }
  auto ntensors = f.Get<uint32_t>();
  for (uint32_t i = 0; i < ntensors; ++i) {
    auto dtype = static_cast<DType>(f.Get<uint8_t>());
    std::vector<int64_t> shape(f.Get<uint32_t>());
    for (int64_t& d : shape) d = f.Get<int64_t>();
    Tensor t = Tensor::Allocate(dtype, shape);
    f.Read(t.data<uint8_t>(), t.byte_size());
    e->tensors.push_back(std::move(t));
  }
  return true;
}

// True when `path` holds a complete cache (magic at the start, end marker written).
bool IsCompleteCacheFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  char magic[8] = {};
  uint64_t tail[2] = {};
  bool ok = std::fread(magic, 1, 8, file) == 8 && std::memcmp(magic, kMagic, 8) == 0 &&
            std::fseek(file, -16, SEEK_END) == 0 && std::fread(tail, 1, 16, file) == 16 &&
            tail[1] == kEndMarker;
  std::fclose(file);
  return ok;
}

class CacheOp final : public StreamOp {
 public:
  explicit CacheOp(OpArgs& args) {
    std::filesystem::path p = args.Path("path", "");
    path_ = p.string();
    if (!path_.empty()) complete_ = IsCompleteCacheFile(path_);
  }
  ~CacheOp() override = default;  // an unfinished recording is never left behind
  OpProperties properties() const override { return {OpKind::kStream, false, true, false}; }
  bool WantsInput() const override { return !complete_; }
  // A filled cache replays exactly the elements it took in.
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }

  void BeginEpoch(int64_t) override {
    reader_.reset();
    writer_.reset();  // the last epoch was cut short: drop its partial recording
    replay_pos_ = 0;
    count_ = 0;
    ended_ = false;
    if (complete_) {
      if (!path_.empty()) {
        reader_ = std::make_unique<CacheFile>(path_);
        char magic[8];
        reader_->Read(magic, 8);
      }
      return;
    }
    // An epoch cut short leaves a partial recording: start it again.
    memory_.clear();
    if (!path_.empty()) {
      writer_ = CacheFile::Record(path_);
      writer_->Write(kMagic, 8);
    }
  }

  bool Next(Input& in, Element* out, const OpContext&) override {
    // Once the epoch has ended, it stays ended: a downstream op may ask again (batch does after
    // emitting a partial batch), and the recording just completed must not replay into it.
    if (ended_) return false;
    if (complete_) {
      if (reader_) {
        ended_ = !ReadElement(*reader_, out);
        return !ended_;
      }
      if (replay_pos_ == memory_.size()) return false;
      *out = memory_[replay_pos_++];  // shares the buffers
      return true;
    }
    if (!in.Next(out)) {
      Finish();
      ended_ = true;
      return false;
    }
    if (writer_) {
      WriteElement(*writer_, *out);
    } else {
      memory_.push_back(*out);
    }
    ++count_;
    return true;
  }

 private:
  void Finish() {
    if (writer_) {
      writer_->Put<uint8_t>(0);
      writer_->Put<uint64_t>(count_);
      writer_->Put<uint64_t>(kEndMarker);
      writer_->Commit();
      writer_.reset();
    }
    complete_ = true;
  }

  std::string path_;
  bool complete_ = false;
  std::vector<Element> memory_;
  size_t replay_pos_ = 0;
  uint64_t count_ = 0;
  bool ended_ = false;  // this epoch's last element was delivered
  std::unique_ptr<CacheFile> writer_;
  std::unique_ptr<CacheFile> reader_;
};
SLUICE_REGISTER_OP("cache", CacheOp);

}  // namespace
}  // namespace sluice::pipeline
