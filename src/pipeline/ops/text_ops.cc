// Built-in text ops: read_lines, tokenize, pad and bucket_by_length.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// Reads the whole file at `path` into `out`; returns 0 or the errno of the failing call.
// POSIX calls rather than iostreams: one fstat to size the buffer, then reads until EOF (which
// also covers files whose st_size is 0, such as those under /proc).
int ReadWholeFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return EISDIR;
  }
  size_t capacity = st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : 4096;
  out->resize(capacity);
  size_t size = 0;
  while (true) {
    if (size == out->size()) out->resize(out->size() * 2);
    ssize_t n = ::read(fd, out->data() + size, out->size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  out->resize(size);
  return 0;
}

// Calls `fn(line, index)` for every line of `text`, without its "\n" or "\r\n". A final line
// without a newline counts; the empty piece after a final newline does not.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  size_t index = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, index++);
    start = end + 1;
  }
}

bool IsAsciiSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool IsStrippedPunctuation(unsigned char c) {
  switch (c) {
    case '.':
    case ',':
    case ';':
    case ':':
    case '!':
    case '?':
    case '"':
    case '\'':
    case '(':
    case ')':
      return true;
    default:
      return false;
  }
}

// The first tensor of `e` when it is a rank-1 int32 or int64 sequence; throws otherwise.
const Tensor& SequenceOf(const Element& e, std::string_view op, std::string_view stage) {
  if (e.tensors.empty()) {
    Fail("stage '{}': {}: expected an element with a rank-1 int32 or int64 tensor, got none", stage,
         op);
  }
  const Tensor& t = e.tensors.front();
  if (t.rank() != 1 || (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64)) {
    Fail("stage '{}': {}: expected a rank-1 int32 or int64 tensor, got {}", stage, op,
         t.Describe());
  }
  return t;
}

// Fills `n` values of `dtype` at `dst` with `value` (already checked to fit the dtype).
void FillValues(uint8_t* dst, DType dtype, int64_t n, int64_t value) {
  if (n <= 0) return;
  if (dtype == DType::kInt32) {
    std::fill_n(reinterpret_cast<int32_t*>(dst), n, static_cast<int32_t>(value));
  } else {
    std::fill_n(reinterpret_cast<int64_t*>(dst), n, value);
  }
}

bool FitsInt32(int64_t v) {
  return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
}

// ---------------------------------------------------------------------------------------------
// read_lines: one element per line of the file named by the input element's path.

class ReadLinesOp : public MapOp {
 public:
  explicit ReadLinesOp(OpArgs& args) : skip_empty_(args.Bool("skip_empty", true)) { args.Finish(); }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    if (in.path.empty()) Fail("stage '{}': read_lines: input element has no path", ctx.stage);
    std::string contents;
    if (int err = ReadWholeFile(in.path, &contents); err != 0) {
      Fail("stage '{}': read_lines: cannot read '{}': {}", ctx.stage, in.path, std::strerror(err));
    }
    // One reservation for all lines: counting newlines is a memchr-speed pass.
    out.reserve(out.size() + 1 +
                static_cast<size_t>(std::count(contents.begin(), contents.end(), '\n')));
    ForEachLine(contents, [&](std::string_view line, size_t index) {
      if (skip_empty_ && line.empty()) return;
      Element& e = out.emplace_back();
      e.bytes = std::make_shared<const std::string>(line);
      e.path = in.path;
      // Keyed on the line's index in the file, so ids do not depend on skip_empty.
      e.id = MixSeed(in.id, index);
    });
  }

 private:
  const bool skip_empty_;
};

// ---------------------------------------------------------------------------------------------
// tokenize: text -> int32 token ids from a vocabulary file (one token per line, id = line).

// Hash and equality that accept std::string and std::string_view alike, so lookups of words
// held in a scratch buffer or a view of the text allocate nothing.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// A byte trie over the vocabulary for greedy longest-match, flattened into arrays: each node's
// children are a contiguous, byte-sorted run of `edges_`; the root has a direct 256-way table
// since every match starts there.
class ByteTrie {
 public:
  // `tokens` sorted (bytewise), unique and non-empty; `ids[i]` is the id of `tokens[i]`.
  void Build(const std::vector<std::string_view>& tokens, const std::vector<int32_t>& ids) {
    nodes_.clear();
    edges_.clear();
    root_.fill(-1);
    nodes_.push_back({});
    BuildNode(0, tokens, ids, 0, tokens.size(), 0);
    for (uint32_t e = nodes_[0].edges_begin; e < nodes_[0].edges_end; ++e) {
      root_[edges_[e].byte] = edges_[e].child;
    }
  }

  // Longest vocabulary token that is a prefix of `text`: sets `*id` and returns its length,
  // or returns 0 when none is.
  size_t LongestMatch(std::string_view text, int32_t* id) const {
    if (text.empty()) return 0;
    int32_t node = root_[static_cast<unsigned char>(text[0])];
    size_t best = 0;
    size_t i = 1;
    while (node >= 0) {
      if (nodes_[node].token_id >= 0) {
        best = i;
        *id = nodes_[node].token_id;
      }
      if (i == text.size()) break;
      node = Child(node, static_cast<unsigned char>(text[i]));
      ++i;
    }
    return best;
  }

 private:
  struct Node {
    int32_t token_id = -1;
    uint32_t edges_begin = 0;
    uint32_t edges_end = 0;
  };
  struct Edge {
    unsigned char byte;
    int32_t child;
  };

  int32_t Child(int32_t node, unsigned char byte) const {
    const Edge* begin = edges_.data() + nodes_[node].edges_begin;
    const Edge* end = edges_.data() + nodes_[node].edges_end;
    const Edge* it = std::lower_bound(begin, end, byte,
                                      [](const Edge& e, unsigned char b) { return e.byte < b; });
    return it != end && it->byte == byte ? it->child : -1;
  }

  // Node `node` stands for the common prefix of length `depth` of tokens[lo, hi).
  void BuildNode(int32_t node, const std::vector<std::string_view>& tokens,
                 const std::vector<int32_t>& ids, size_t lo, size_t hi, size_t depth) {
    if (lo < hi && tokens[lo].size() == depth) {  // sorted: the prefix itself comes first
      nodes_[node].token_id = ids[lo];
      ++lo;
    }
    // Children's edges are reserved as one run before recursing, so they stay contiguous.
    struct Group {
      size_t lo, hi;
    };
    std::vector<Group> groups;
    for (size_t i = lo; i < hi;) {
      size_t j = i + 1;
      while (j < hi && tokens[j][depth] == tokens[i][depth]) ++j;
      groups.push_back({i, j});
      i = j;
    }
    nodes_[node].edges_begin = static_cast<uint32_t>(edges_.size());
    for (const Group& g : groups) {
      edges_.push_back(
          {static_cast<unsigned char>(tokens[g.lo][depth]), static_cast<int32_t>(nodes_.size())});
      nodes_.push_back({});
    }
    nodes_[node].edges_end = static_cast<uint32_t>(edges_.size());
    for (size_t k = 0; k < groups.size(); ++k) {
      BuildNode(edges_[nodes_[node].edges_begin + k].child, tokens, ids, groups[k].lo, groups[k].hi,
                depth + 1);
    }
  }

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::array<int32_t, 256> root_{};
};

class TokenizeOp : public MapOp {
 public:
  enum class Mode { kWhitespace, kByte };

  explicit TokenizeOp(OpArgs& args) {
    std::filesystem::path vocab_path = args.Path("vocab");
    std::string mode = args.String("mode", "whitespace");
    if (mode == "whitespace") {
      mode_ = Mode::kWhitespace;
    } else if (mode == "byte") {
      mode_ = Mode::kByte;
    } else {
      args.Fail("mode", fmt::format("expected \"whitespace\" or \"byte\", got \"{}\"", mode));
    }
    int64_t max_length = args.Int("max_length", 0);
    if (max_length < 0) args.Fail("max_length", "must be >= 0 (0 = no limit)");
    max_length_ =
        max_length == 0 ? std::numeric_limits<size_t>::max() : static_cast<size_t>(max_length);
    std::string unk = args.String("unk", "[UNK]");

    std::string contents;
    if (int err = ReadWholeFile(vocab_path.string(), &contents); err != 0) {
      args.Fail("vocab", fmt::format("cannot read vocab file '{}': {}", vocab_path.string(),
                                     std::strerror(err)));
    }
    size_t max_token = 0;
    bool too_many = false;
    ForEachLine(contents, [&](std::string_view token, size_t index) {
      if (index > static_cast<size_t>(std::numeric_limits<int32_t>::max())) too_many = true;
      if (token.empty() || too_many) return;  // an empty line keeps its id but matches nothing
      // A duplicated token keeps its first id.
      if (vocab_.emplace(std::string(token), static_cast<int32_t>(index)).second) {
        max_token = std::max(max_token, token.size());
      }
    });
    if (too_many) {
      args.Fail("vocab",
                fmt::format("vocab file '{}' has more than 2^31 lines", vocab_path.string()));
    }
    auto it = vocab_.find(std::string_view(unk));
    if (it == vocab_.end()) {
      args.Fail("unk", fmt::format("unknown-token \"{}\" is not in vocab file '{}'", unk,
                                   vocab_path.string()));
    }
    unk_id_ = it->second;

    if (mode_ == Mode::kByte) {
      std::vector<std::string_view> tokens;
      tokens.reserve(vocab_.size());
      for (const auto& [token, id] : vocab_) tokens.push_back(token);
      std::sort(tokens.begin(), tokens.end());
      std::vector<int32_t> ids;
      ids.reserve(tokens.size());
      for (std::string_view t : tokens) ids.push_back(vocab_.find(t)->second);
      trie_.Build(tokens, ids);  // views into vocab_'s keys, which outlive the build
    }
    args.Finish();
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    if (in.bytes == nullptr) {
      Fail("stage '{}': tokenize: input element has no text (run it after read_lines)", ctx.stage);
    }
    // Per-thread scratch keeps its capacity across calls: the output tensor is the only
    // allocation per element.
    thread_local std::vector<int32_t> ids;
    ids.clear();
    std::string_view text = in.text();
    if (mode_ == Mode::kWhitespace) {
      TokenizeWords(text, ids);
    } else {
      TokenizeBytes(text, ids);
    }
    Tensor t = Tensor::Allocate(DType::kInt32, {static_cast<int64_t>(ids.size())});
    if (!ids.empty()) std::memcpy(t.data<int32_t>(), ids.data(), ids.size() * sizeof(int32_t));

    Element& e = out.emplace_back();
    e.tensors.push_back(std::move(t));
    e.path = std::move(in.path);
    e.id = in.id;
  }

 private:
  void TokenizeWords(std::string_view text, std::vector<int32_t>& ids) const {
    thread_local std::string word;
    size_t i = 0;
    while (i < text.size() && ids.size() < max_length_) {
      while (i < text.size() && IsAsciiSpace(text[i])) ++i;
      size_t start = i;
      while (i < text.size() && !IsAsciiSpace(text[i])) ++i;
      size_t end = i;
      while (start < end && IsStrippedPunctuation(text[start])) ++start;
      while (end > start && IsStrippedPunctuation(text[end - 1])) --end;
      if (start == end) continue;  // only whitespace or punctuation: no token
      word.assign(text.data() + start, end - start);
      for (char& c : word) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      auto it = vocab_.find(std::string_view(word));
      ids.push_back(it == vocab_.end() ? unk_id_ : it->second);
    }
  }

  void TokenizeBytes(std::string_view text, std::vector<int32_t>& ids) const {
    size_t i = 0;
    while (i < text.size() && ids.size() < max_length_) {
      int32_t id = unk_id_;
      size_t n = trie_.LongestMatch(text.substr(i), &id);
      ids.push_back(id);
      i += n == 0 ? 1 : n;
    }
  }

  Mode mode_ = Mode::kWhitespace;
  size_t max_length_ = 0;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  int32_t unk_id_ = 0;
  ByteTrie trie_;
};

// ---------------------------------------------------------------------------------------------
// pad: truncates or pads a rank-1 int32/int64 sequence to a fixed length.

class PadOp : public MapOp {
 public:
  explicit PadOp(OpArgs& args) : length_(args.Int("length")), value_(args.Int("value", 0)) {
    if (length_ <= 0) args.Fail("length", fmt::format("must be > 0, got {}", length_));
    args.Finish();
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = true, .stateless = true};
  }

  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const Tensor& seq = SequenceOf(in, "pad", ctx.stage);
    // Tensors are immutable once made, so one already of the right length is passed through.
    if (seq.dim(0) != length_) {
      if (seq.dtype() == DType::kInt32 && !FitsInt32(value_)) {
        Fail("stage '{}': pad: args.value {} does not fit the int32 sequence", ctx.stage, value_);
      }
      size_t elem = DTypeSize(seq.dtype());
      int64_t keep = std::min(seq.dim(0), length_);
      Tensor padded = Tensor::Allocate(seq.dtype(), {length_});
      uint8_t* dst = padded.data<uint8_t>();
      if (keep > 0) std::memcpy(dst, seq.data<uint8_t>(), static_cast<size_t>(keep) * elem);
      FillValues(dst + keep * elem, seq.dtype(), length_ - keep, value_);
      in.tensors.front() = std::move(padded);
    }
    out.push_back(std::move(in));
  }

 private:
  const int64_t length_;
  const int64_t value_;
};

// ---------------------------------------------------------------------------------------------
// bucket_by_length: batches sequences of similar length, padded to the longest in the batch
// (after tf.data's bucket_by_sequence_length).

class BucketByLengthOp : public StreamOp {
 public:
  explicit BucketByLengthOp(OpArgs& args) {
    boundaries_ = args.Ints("boundaries");
    for (size_t i = 0; i < boundaries_.size(); ++i) {
      if (boundaries_[i] <= 0) {
        args.Fail("boundaries", fmt::format("must be positive, got {}", boundaries_[i]));
      }
      if (i > 0 && boundaries_[i] <= boundaries_[i - 1]) {
        args.Fail("boundaries", fmt::format("must be strictly increasing, got {} after {}",
                                            boundaries_[i], boundaries_[i - 1]));
      }
    }
    const size_t num_buckets = boundaries_.size() + 1;
    bool has_sizes = args.Has("batch_sizes");
    bool has_size = args.Has("batch_size");
    if (has_sizes && has_size) {
      args.Fail("batch_sizes", "give either batch_size or batch_sizes, not both");
    }
    if (has_sizes) {
      batch_sizes_ = args.Ints("batch_sizes");
      if (batch_sizes_.size() != num_buckets) {
        args.Fail("batch_sizes",
                  fmt::format("needs one batch size per bucket ({} = boundaries + 1), got {}",
                              num_buckets, batch_sizes_.size()));
      }
    } else if (has_size) {
      batch_sizes_.assign(num_buckets, args.Int("batch_size"));
    } else {
      args.Fail("batch_size", "required by op 'bucket_by_length' (or batch_sizes, per bucket)");
    }
    const char* key = has_sizes ? "batch_sizes" : "batch_size";
    for (int64_t b : batch_sizes_) {
      if (b <= 0 || !FitsInt32(b)) args.Fail(key, fmt::format("must be > 0, got {}", b));
    }
    pad_value_ = args.Int("pad_value", 0);
    drop_remainder_ = args.Bool("drop_remainder", false);
    args.Finish();

    buckets_.resize(num_buckets);
    for (size_t i = 0; i < num_buckets; ++i) {
      buckets_[i].sequences.reserve(static_cast<size_t>(batch_sizes_[i]));
    }
  }

  OpProperties properties() const override {
    return {.kind = OpKind::kStream,
            .parallelizable = false,
            .deterministic = true,
            .stateless = false};
  }

  void BeginEpoch(int64_t /*epoch*/) override {
    for (Bucket& b : buckets_) b.Clear();
    input_done_ = false;
    flush_next_ = 0;
    batches_ = 0;
  }

  bool Next(Input& in, Element* out, const OpContext& ctx) override {
    Element e;
    while (!input_done_) {
      if (!in.Next(&e)) {
        input_done_ = true;
        break;
      }
      const Tensor& seq = SequenceOf(e, "bucket_by_length", ctx.stage);
      int64_t length = seq.dim(0);
      if (!FitsInt32(length)) {
        Fail("stage '{}': bucket_by_length: sequence of length {} is too long", ctx.stage, length);
      }
      size_t index = static_cast<size_t>(
          std::upper_bound(boundaries_.begin(), boundaries_.end(), length) - boundaries_.begin());
      Bucket& bucket = buckets_[index];
      if (!bucket.sequences.empty() && bucket.sequences.front().dtype() != seq.dtype()) {
        Fail("stage '{}': bucket_by_length: cannot batch {} with {} sequences", ctx.stage,
             seq.Describe(), DTypeName(bucket.sequences.front().dtype()));
      }
      bucket.max_length = std::max(bucket.max_length, length);
      bucket.sequences.push_back(seq);
      if (static_cast<int64_t>(bucket.sequences.size()) == batch_sizes_[index]) {
        Emit(bucket, out, ctx);
        return true;
      }
    }
    // End of input: partial buckets in bucket order.
    for (; !drop_remainder_ && flush_next_ < buckets_.size(); ++flush_next_) {
      if (!buckets_[flush_next_].sequences.empty()) {
        Emit(buckets_[flush_next_++], out, ctx);
        return true;
      }
    }
    return false;
  }

 private:
  struct Bucket {
    std::vector<Tensor> sequences;  // capacity kept across batches
    int64_t max_length = 0;
    void Clear() {
      sequences.clear();
      max_length = 0;
    }
  };

  // Writes the bucket's sequences to `out` as {dtype[B, Lmax], int32[B] lengths}; empties it.
  void Emit(Bucket& bucket, Element* out, const OpContext& ctx) {
    const DType dtype = bucket.sequences.front().dtype();
    if (dtype == DType::kInt32 && !FitsInt32(pad_value_)) {
      Fail("stage '{}': bucket_by_length: args.pad_value {} does not fit the int32 sequences",
           ctx.stage, pad_value_);
    }
    const int64_t rows = static_cast<int64_t>(bucket.sequences.size());
    const int64_t cols = bucket.max_length;
    const size_t elem = DTypeSize(dtype);
    Tensor batch = Tensor::Allocate(dtype, {rows, cols});
    Tensor lengths = Tensor::Allocate(DType::kInt32, {rows});
    uint8_t* row = batch.data<uint8_t>();
    int32_t* len = lengths.data<int32_t>();
    for (const Tensor& seq : bucket.sequences) {
      int64_t n = seq.dim(0);
      if (n > 0) std::memcpy(row, seq.data<uint8_t>(), static_cast<size_t>(n) * elem);
      FillValues(row + n * elem, dtype, cols - n, pad_value_);
      *len++ = static_cast<int32_t>(n);
      row += cols * elem;
    }
    bucket.Clear();

    out->tensors.clear();
    out->tensors.push_back(std::move(batch));
    out->tensors.push_back(std::move(lengths));
    out->bytes = nullptr;
    out->path.clear();
    out->id = batches_++;
  }

  std::vector<int64_t> boundaries_;
  std::vector<int64_t> batch_sizes_;  // one per bucket
  int64_t pad_value_ = 0;
  bool drop_remainder_ = false;

  // Epoch state, reset by BeginEpoch; touched only by the single thread running the stage.
  std::vector<Bucket> buckets_;
  bool input_done_ = false;
  size_t flush_next_ = 0;  // next bucket to flush once the input is done
  uint64_t batches_ = 0;   // batches emitted this epoch (the outputs' ids)
};

}  // namespace

SLUICE_REGISTER_OP("read_lines", ReadLinesOp);
SLUICE_REGISTER_OP("tokenize", TokenizeOp);
SLUICE_REGISTER_OP("pad", PadOp);
SLUICE_REGISTER_OP("bucket_by_length", BucketByLengthOp);

}  // namespace sluice::pipeline
