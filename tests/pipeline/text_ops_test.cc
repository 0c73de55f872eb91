// Tests for the built-in text ops: read_lines, tokenize, pad and bucket_by_length.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"
#include "tests/common/harness.h"

namespace sluice::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = OpArgs::Json;

// A rank-1 tensor holding `values`.
template <typename T>
Tensor Sequence(DType dtype, const std::vector<T>& values) {
  Tensor t = Tensor::Allocate(dtype, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = values[i];
  return t;
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.num_values());
}

Element TextElement(std::string text) {
  Element e;
  e.bytes = std::make_shared<const std::string>(std::move(text));
  e.path = "corpus.txt";
  e.id = 42;
  return e;
}

Element SequenceElement(std::vector<int32_t> values) {
  Element e;
  e.tensors.push_back(Sequence<int32_t>(DType::kInt32, values));
  return e;
}

// Serves a fixed list of elements to a StreamOp.
class VectorInput : public Input {
 public:
  explicit VectorInput(std::vector<Element> elements) : elements_(std::move(elements)) {}
  bool Next(Element* out) override {
    if (next_ == elements_.size()) return false;
    *out = elements_[next_++];
    return true;
  }

 private:
  std::vector<Element> elements_;
  size_t next_ = 0;
};

class TextOpsTest : public sluice::test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ctx_.stage = "stage";
  }

  std::filesystem::path Write(const std::string& name, const std::string& contents) {
    std::filesystem::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }

  // Creates op `op` from `args`; the OpArgs must outlive construction only.
  std::unique_ptr<Op> Create(const std::string& op, const Json& args) {
    OpArgs op_args(args, "test.json", "stage", op, dir_);
    return OpRegistry::Global().Create(op, op_args);
  }

  // The message of the sluice::Error that creating `op` throws, or "" when none is thrown.
  std::string CreateError(const std::string& op, const Json& args) {
    try {
      Create(op, args);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::vector<Element> Map(Op& op, Element in) {
    std::vector<Element> out;
    dynamic_cast<MapOp&>(op).Process(std::move(in), out, ctx_);
    return out;
  }

  std::vector<int32_t> Tokens(Op& op, const std::string& text) {
    std::vector<Element> out = Map(op, TextElement(text));
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tensors.size(), 1u);
    EXPECT_EQ(out[0].tensors[0].dtype(), DType::kInt32);
    EXPECT_EQ(out[0].tensors[0].rank(), 1u);
    return Values<int32_t>(out[0].tensors[0]);
  }

  // Runs a StreamOp over `in` for one epoch and returns everything it emits.
  std::vector<Element> Drain(Op& op, std::vector<Element> in) {
    op.BeginEpoch(0);
    VectorInput input(std::move(in));
    std::vector<Element> out;
    Element e;
    auto& stream = dynamic_cast<StreamOp&>(op);
    while (stream.Next(input, &e, ctx_)) out.push_back(std::move(e));
    EXPECT_FALSE(stream.Next(input, &e, ctx_)) << "stays at the end of the epoch";
    return out;
  }

  OpContext ctx_;
};

// ---- read_lines --------------------------------------------------------------------------------

TEST_F(TextOpsTest, ReadLinesSplitsLinesAndSkipsEmptyOnes) {
  std::filesystem::path file = Write("a.txt", "first line\n\nsecond\r\nthird");
  auto op = Create("read_lines", Json::object());
  OpProperties props = op->properties();
  EXPECT_EQ(props.kind, OpKind::kMap);
  EXPECT_TRUE(props.parallelizable);
  EXPECT_TRUE(props.deterministic);
  EXPECT_TRUE(props.stateless);

  Element in;
  in.path = file.string();
  in.id = 7;
  std::vector<Element> out = Map(*op, in);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].text(), "first line");
  EXPECT_EQ(out[1].text(), "second");
  EXPECT_EQ(out[2].text(), "third");
  std::set<uint64_t> ids;
  for (const Element& e : out) {
    EXPECT_EQ(e.path, file.string());
    EXPECT_TRUE(e.tensors.empty());
    ids.insert(e.id);
  }
  EXPECT_EQ(ids.size(), 3u) << "every line has its own id";
  EXPECT_EQ(out[0].id, MixSeed(7, 0));
  EXPECT_EQ(out[1].id, MixSeed(7, 2)) << "ids follow the line's index in the file";

  // The same file read again gives the same ids; another input id gives others.
  EXPECT_EQ(Map(*op, in)[0].id, out[0].id);
  in.id = 8;
  EXPECT_NE(Map(*op, in)[0].id, out[0].id);
}

TEST_F(TextOpsTest, ReadLinesKeepsEmptyLinesWhenAsked) {
  std::filesystem::path file = Write("a.txt", "a\n\nb\n");
  auto op = Create("read_lines", Json{{"skip_empty", false}});
  Element in;
  in.path = file.string();
  std::vector<Element> out = Map(*op, in);
  ASSERT_EQ(out.size(), 3u) << "no extra line after the final newline";
  EXPECT_EQ(out[0].text(), "a");
  EXPECT_EQ(out[1].text(), "");
  ASSERT_NE(out[1].bytes, nullptr);
  EXPECT_EQ(out[2].text(), "b");
}

TEST_F(TextOpsTest, ReadLinesOfEmptyFileEmitsNothing) {
  Element in;
  in.path = Write("empty.txt", "").string();
  EXPECT_TRUE(Map(*Create("read_lines", Json::object()), in).empty());
}

TEST_F(TextOpsTest, ReadLinesMissingFileNamesThePath) {
  auto op = Create("read_lines", Json::object());
  Element in;
  in.path = (dir_ / "missing.txt").string();
  try {
    Map(*op, in);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(in.path));
    EXPECT_THAT(e.what(), HasSubstr("No such file or directory"));
  }
}

TEST_F(TextOpsTest, ReadLinesRejectsUnknownArgument) {
  EXPECT_THAT(CreateError("read_lines", Json{{"skip_blank", true}}), HasSubstr("unknown argument"));
}

// ---- tokenize ----------------------------------------------------------------------------------

TEST_F(TextOpsTest, TokenizeWhitespaceMapsWordsAndUnknown) {
  Write("vocab.txt", "[UNK]\nthe\ncat\nsat\non\nmat\n");
  // A relative vocab path resolves against the config's directory.
  auto op = Create("tokenize", Json{{"vocab", "vocab.txt"}});
  EXPECT_THAT(Tokens(*op, "the cat sat on the dog"), ElementsAre(1, 2, 3, 4, 1, 0));
  EXPECT_THAT(Tokens(*op, "  The\tCAT,\n  \"sat!\" (on) mat.  "), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(Tokens(*op, "... the"), ElementsAre(1)) << "punctuation-only words are dropped";
  EXPECT_THAT(Tokens(*op, "don't"), ElementsAre(0)) << "inner punctuation stays";
  EXPECT_TRUE(Tokens(*op, "").empty());

  std::vector<Element> out = Map(*op, TextElement("the cat"));
  EXPECT_EQ(out[0].bytes, nullptr) << "text is dropped";
  EXPECT_EQ(out[0].path, "corpus.txt");
  EXPECT_EQ(out[0].id, 42u);
}

TEST_F(TextOpsTest, TokenizeCustomUnknownToken) {
  Write("vocab.txt", "a\n<unk>\nb\n");
  auto op = Create("tokenize", Json{{"vocab", (dir_ / "vocab.txt").string()}, {"unk", "<unk>"}});
  EXPECT_THAT(Tokens(*op, "a z b"), ElementsAre(0, 1, 2));
}

TEST_F(TextOpsTest, TokenizeByteModeIsGreedyLongestMatch) {
  Write("vocab.txt", "[UNK]\na\nab\nabc\nb\nc\n \nbcd\n");
  auto op = Create("tokenize", Json{{"vocab", "vocab.txt"}, {"mode", "byte"}});
  // "abcd": longest at 0 is "abc" (3), then "d" is unknown.
  EXPECT_THAT(Tokens(*op, "abcd"), ElementsAre(3, 0));
  // "abd": "ab" (2), then unknown "d".
  EXPECT_THAT(Tokens(*op, "abd"), ElementsAre(2, 0));
  // Spaces are ordinary bytes; case is kept.
  EXPECT_THAT(Tokens(*op, "ab cA"), ElementsAre(2, 6, 5, 0));
  // Greedy, not optimal: "abcd" never becomes "a" + "bcd".
  EXPECT_THAT(Tokens(*op, "xbcd"), ElementsAre(0, 7));
  // Every unknown byte advances by one.
  EXPECT_THAT(Tokens(*op, "zz"), ElementsAre(0, 0));
}

TEST_F(TextOpsTest, TokenizeByteModeHandlesNonAsciiBytes) {
  Write("vocab.txt", "[UNK]\n\xc3\xa9\n\xc3\n");
  auto op = Create("tokenize", Json{{"vocab", "vocab.txt"}, {"mode", "byte"}});
  EXPECT_THAT(Tokens(*op, "\xc3\xa9\xc3x\xff"), ElementsAre(1, 2, 0, 0));
}

TEST_F(TextOpsTest, TokenizeTruncatesToMaxLength) {
  Write("vocab.txt", "[UNK]\na\nb\n");
  auto words = Create("tokenize", Json{{"vocab", "vocab.txt"}, {"max_length", 3}});
  EXPECT_THAT(Tokens(*words, "a b a b a"), ElementsAre(1, 2, 1));
  EXPECT_THAT(Tokens(*words, "a b"), ElementsAre(1, 2));
  auto bytes =
      Create("tokenize", Json{{"vocab", "vocab.txt"}, {"mode", "byte"}, {"max_length", 2}});
  EXPECT_THAT(Tokens(*bytes, "abab"), ElementsAre(1, 2));
}

TEST_F(TextOpsTest, TokenizeMissingVocabNamesTheFile) {
  std::string error = CreateError("tokenize", Json{{"vocab", "nowhere/vocab.txt"}});
  EXPECT_THAT(error, HasSubstr("nowhere/vocab.txt"));
  EXPECT_THAT(error, HasSubstr("args.vocab"));
  EXPECT_THAT(error, HasSubstr("test.json"));
}

TEST_F(TextOpsTest, TokenizeUnknownTokenMustBeInVocab) {
  Write("vocab.txt", "a\nb\n");
  std::string error = CreateError("tokenize", Json{{"vocab", "vocab.txt"}});
  EXPECT_THAT(error, HasSubstr("[UNK]"));
  EXPECT_THAT(error, HasSubstr("vocab.txt"));
  EXPECT_THAT(error, HasSubstr("args.unk"));
}

TEST_F(TextOpsTest, TokenizeValidatesArgs) {
  Write("vocab.txt", "[UNK]\n");
  EXPECT_THAT(CreateError("tokenize", Json{{"vocab", "vocab.txt"}, {"mode", "wordpiece"}}),
              HasSubstr("args.mode"));
  EXPECT_THAT(CreateError("tokenize", Json{{"vocab", "vocab.txt"}, {"max_length", -1}}),
              HasSubstr("args.max_length"));
  EXPECT_THAT(CreateError("tokenize", Json::object()), HasSubstr("args.vocab"));
  EXPECT_THAT(CreateError("tokenize", Json{{"vocab", "vocab.txt"}, {"lower", true}}),
              HasSubstr("unknown argument"));
}

TEST_F(TextOpsTest, TokenizeRejectsElementWithoutText) {
  Write("vocab.txt", "[UNK]\n");
  auto op = Create("tokenize", Json{{"vocab", "vocab.txt"}});
  EXPECT_THROW(Map(*op, SequenceElement({1, 2})), Error);
}

// ---- pad ---------------------------------------------------------------------------------------

TEST_F(TextOpsTest, PadTruncatesAndPads) {
  auto op = Create("pad", Json{{"length", 4}, {"value", -1}});
  std::vector<Element> out = Map(*op, SequenceElement({1, 2}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tensors[0].shape(), std::vector<int64_t>({4}));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[0]), ElementsAre(1, 2, -1, -1));

  out = Map(*op, SequenceElement({1, 2, 3, 4, 5, 6}));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[0]), ElementsAre(1, 2, 3, 4));

  out = Map(*op, SequenceElement({}));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[0]), ElementsAre(-1, -1, -1, -1));

  Element exact = SequenceElement({9, 8, 7, 6});
  const uint8_t* buffer = exact.tensors[0].buffer().get();
  out = Map(*op, exact);
  EXPECT_THAT(Values<int32_t>(out[0].tensors[0]), ElementsAre(9, 8, 7, 6));
  EXPECT_EQ(out[0].tensors[0].buffer().get(), buffer) << "no copy when already the right length";
}

TEST_F(TextOpsTest, PadKeepsInt64AndTheRestOfTheElement) {
  auto op = Create("pad", Json{{"length", 3}});
  Element in;
  in.tensors.push_back(Sequence<int64_t>(DType::kInt64, {int64_t{1} << 40}));
  in.tensors.push_back(Sequence<int32_t>(DType::kInt32, {5}));
  in.path = "p";
  in.id = 3;
  std::vector<Element> out = Map(*op, in);
  ASSERT_EQ(out[0].tensors.size(), 2u);
  EXPECT_EQ(out[0].tensors[0].dtype(), DType::kInt64);
  EXPECT_THAT(Values<int64_t>(out[0].tensors[0]), ElementsAre(int64_t{1} << 40, 0, 0));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(5));
  EXPECT_EQ(out[0].path, "p");
  EXPECT_EQ(out[0].id, 3u);
}

TEST_F(TextOpsTest, PadRejectsWrongRankAndArgs) {
  auto op = Create("pad", Json{{"length", 4}});
  Element matrix;
  matrix.tensors.push_back(Tensor::Allocate(DType::kInt32, {2, 2}));
  try {
    Map(*op, matrix);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank-1"));
    EXPECT_THAT(e.what(), HasSubstr("int32[2,2]"));
  }
  Element floats;
  floats.tensors.push_back(Tensor::Allocate(DType::kFloat32, {2}));
  EXPECT_THROW(Map(*op, floats), Error);
  EXPECT_THROW(Map(*op, Element{}), Error);

  EXPECT_THAT(CreateError("pad", Json{{"length", 0}}), HasSubstr("args.length"));
  EXPECT_THAT(CreateError("pad", Json::object()), HasSubstr("args.length"));
  EXPECT_THAT(CreateError("pad", Json{{"length", 2}, {"fill", 1}}), HasSubstr("unknown argument"));
}

// ---- bucket_by_length --------------------------------------------------------------------------

std::vector<Element> Sequences(const std::vector<int>& lengths) {
  std::vector<Element> out;
  int next = 1;
  for (int n : lengths) {
    std::vector<int32_t> values;
    for (int i = 0; i < n; ++i) values.push_back(next++);
    out.push_back(SequenceElement(values));
  }
  return out;
}

TEST_F(TextOpsTest, BucketByLengthRoutesPadsAndFlushes) {
  auto op = Create("bucket_by_length",
                   Json{{"boundaries", {3, 5}}, {"batch_sizes", {2, 2, 1}}, {"pad_value", -1}});
  OpProperties props = op->properties();
  EXPECT_EQ(props.kind, OpKind::kStream);
  EXPECT_FALSE(props.parallelizable);
  EXPECT_TRUE(props.deterministic);
  EXPECT_FALSE(props.stateless);

  // Lengths 1, 3, 2 -> buckets 0, 1, 0 (bucket 0 full); 7 -> bucket 2 (size 1, full);
  // 4 -> bucket 1 (full); 5 -> bucket 2 (full); 2 -> bucket 0, flushed at the end.
  std::vector<Element> out = Drain(*op, Sequences({1, 3, 2, 7, 4, 5, 2}));
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].id, i) << "ids count batches";
    ASSERT_EQ(out[i].tensors.size(), 2u);
    EXPECT_EQ(out[i].tensors[1].dtype(), DType::kInt32);
  }
  // Bucket 0: [1] and [5,6] -> padded to 2.
  EXPECT_EQ(out[0].tensors[0].shape(), std::vector<int64_t>({2, 2}));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[0]), ElementsAre(1, -1, 5, 6));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(1, 2));
  // Bucket 2 (length 7 >= 5).
  EXPECT_EQ(out[1].tensors[0].shape(), std::vector<int64_t>({1, 7}));
  EXPECT_THAT(Values<int32_t>(out[1].tensors[0]), ElementsAre(7, 8, 9, 10, 11, 12, 13));
  EXPECT_THAT(Values<int32_t>(out[1].tensors[1]), ElementsAre(7));
  // Bucket 1: lengths 3 and 4 (3 <= L < 5).
  EXPECT_EQ(out[2].tensors[0].shape(), std::vector<int64_t>({2, 4}));
  EXPECT_THAT(Values<int32_t>(out[2].tensors[0]), ElementsAre(2, 3, 4, -1, 14, 15, 16, 17));
  EXPECT_THAT(Values<int32_t>(out[2].tensors[1]), ElementsAre(3, 4));
  // Bucket 2: exactly the boundary 5.
  EXPECT_EQ(out[3].tensors[0].shape(), std::vector<int64_t>({1, 5}));
  EXPECT_THAT(Values<int32_t>(out[3].tensors[1]), ElementsAre(5));
  // Partial bucket 0 at the end of input.
  EXPECT_EQ(out[4].tensors[0].shape(), std::vector<int64_t>({1, 2}));
  EXPECT_THAT(Values<int32_t>(out[4].tensors[0]), ElementsAre(23, 24));
  EXPECT_THAT(Values<int32_t>(out[4].tensors[1]), ElementsAre(2));
}

TEST_F(TextOpsTest, BucketByLengthFlushesPartialBucketsInBucketOrder) {
  auto op = Create("bucket_by_length", Json{{"boundaries", {2, 4}}, {"batch_size", 3}});
  // Lengths 5, 1, 3, 1: nothing fills up; flushed as bucket 0, 1, 2.
  std::vector<Element> out = Drain(*op, Sequences({5, 1, 3, 1}));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(1, 1));
  EXPECT_THAT(Values<int32_t>(out[1].tensors[1]), ElementsAre(3));
  EXPECT_THAT(Values<int32_t>(out[2].tensors[1]), ElementsAre(5));
  EXPECT_EQ(out[2].id, 2u);
}

TEST_F(TextOpsTest, BucketByLengthDropRemainderDropsPartialBuckets) {
  auto op = Create("bucket_by_length",
                   Json{{"boundaries", {2}}, {"batch_size", 2}, {"drop_remainder", true}});
  std::vector<Element> out = Drain(*op, Sequences({1, 3, 1, 4, 5}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(1, 1));
  EXPECT_THAT(Values<int32_t>(out[1].tensors[1]), ElementsAre(3, 4));
}

TEST_F(TextOpsTest, BucketByLengthResetsAtEachEpoch) {
  auto op = Create("bucket_by_length", Json{{"boundaries", {10}}, {"batch_size", 2}});
  auto& stream = dynamic_cast<StreamOp&>(*op);
  // Epoch 0 stops part-way, leaving one sequence in a bucket.
  op->BeginEpoch(0);
  VectorInput partial(Sequences({1, 1, 1}));
  Element e;
  ASSERT_TRUE(stream.Next(partial, &e, ctx_));
  EXPECT_EQ(e.id, 0u);
  // Epoch 1 starts clean: the leftover does not leak in and ids restart.
  std::vector<Element> out = Drain(*op, Sequences({2, 2}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 0u);
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(2, 2));
}

TEST_F(TextOpsTest, BucketByLengthKeepsInt64) {
  auto op = Create("bucket_by_length", Json{{"boundaries", Json::array()}, {"batch_size", 2}});
  std::vector<Element> in(2);
  in[0].tensors.push_back(Sequence<int64_t>(DType::kInt64, {int64_t{1} << 40}));
  in[1].tensors.push_back(Sequence<int64_t>(DType::kInt64, {}));
  std::vector<Element> out = Drain(*op, in);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tensors[0].dtype(), DType::kInt64);
  EXPECT_THAT(Values<int64_t>(out[0].tensors[0]), ElementsAre(int64_t{1} << 40, 0));
  EXPECT_THAT(Values<int32_t>(out[0].tensors[1]), ElementsAre(1, 0));
}

TEST_F(TextOpsTest, BucketByLengthRejectsBadElements) {
  auto op = Create("bucket_by_length", Json{{"boundaries", {4}}, {"batch_size", 2}});
  std::vector<Element> in(1);
  in[0].tensors.push_back(Tensor::Allocate(DType::kInt32, {2, 3}));
  EXPECT_THROW(Drain(*op, in), Error);

  // Mixed dtypes in one bucket.
  std::vector<Element> mixed(2);
  mixed[0].tensors.push_back(Sequence<int32_t>(DType::kInt32, {1}));
  mixed[1].tensors.push_back(Sequence<int64_t>(DType::kInt64, {1}));
  EXPECT_THROW(Drain(*op, mixed), Error);
}

TEST_F(TextOpsTest, BucketByLengthValidatesArgs) {
  EXPECT_THAT(CreateError("bucket_by_length", Json{{"boundaries", {4, 4}}, {"batch_size", 2}}),
              HasSubstr("args.boundaries"));
  EXPECT_THAT(CreateError("bucket_by_length", Json{{"boundaries", {8, 4}}, {"batch_size", 2}}),
              HasSubstr("strictly increasing"));
  EXPECT_THAT(
      CreateError("bucket_by_length", Json{{"boundaries", {4, 8}}, {"batch_sizes", {2, 2}}}),
      HasSubstr("args.batch_sizes"));
  EXPECT_THAT(CreateError("bucket_by_length",
                          Json{{"boundaries", {4}}, {"batch_sizes", {2, 2}}, {"batch_size", 2}}),
              HasSubstr("batch_size"));
  EXPECT_THAT(CreateError("bucket_by_length", Json{{"boundaries", {4}}}),
              HasSubstr("args.batch_size"));
  EXPECT_THAT(CreateError("bucket_by_length", Json{{"boundaries", {4}}, {"batch_size", 0}}),
              HasSubstr("args.batch_size"));
  EXPECT_THAT(CreateError("bucket_by_length", Json{{"batch_size", 2}}),
              HasSubstr("args.boundaries"));
  EXPECT_THAT(
      CreateError("bucket_by_length", Json{{"boundaries", {4}}, {"batch_size", 2}, {"padding", 0}}),
      HasSubstr("unknown argument"));
}

}  // namespace
}  // namespace sluice::pipeline
