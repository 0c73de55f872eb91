// Tests for byte-preserving config rewrites: only tuned values change, key order, unknown keys,
// indentation and line endings are kept, stages insert and remove cleanly, saves are atomic.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice::config {
namespace {

using test_util::ReadFile;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kOrigin[] = "cfg/odd.json";

// Idiosyncratic but valid formatting: tabs, 4-space and 1-space indents, one-line and
// multi-line stages, " : " separators, unknown keys at every level, unicode and escaped quotes,
// a "parallelism" inside args, numbers that a reformatter would rewrite (1.0e3, -2E-2).
const std::string kOdd =
    "{\n"
    "\t\"name\": \"odd \\\"quoted\\\" \xC3\xBCn\xC3\xAF"
    "code \xE2\x9C\x93\",\n"
    "\t\"x_owner\": {\"team\": \"data\", \"limits\": [1.0e3, -2E-2, 0.5]},\n"
    "\t\"stages\": [\n"
    "\t\t{\"name\": \"files\", \"op\": \"list_files\", \"args\": {\"pattern\": "
    "\"a\\\\b\\\"c}*.jpg\", "
    "\"parallelism\": 9}, \"x_note\": \"keep \\u00e9\"},\n"
    "    {\"name\":\"read\",\"op\":\"read_file\",\"parallelism\":1},\n"
    "\t\t{\n"
    "\t\t    \"name\": \"decode\",\n"
    "\t\t    \"op\": \"decode_jpeg\",\n"
    "\t\t    \"x_weight\": 1.0e3,\n"
    "\t\t    \"parallelism\": 2\n"
    "\t\t},\n"
    " {\n"
    " \"name\" : \"crop\",\n"
    " \"op\" : \"random_resized_crop\",\n"
    " \"args\" : {\"size\": 224, \"parallelism\": 1}\n"
    " },\n"
    "\t\t{\"name\": \"batch\", \"op\": \"batch\", \"args\": {\"size\": 64}, \"buffer_size\": 1, "
    "\"deterministic\": true}\n"
    "\t],\n"
    "\t\"x_trailer\": \"}]{[,\\\"\",\n"
    "    \"epochs\": 1\n"
    "}\n";

// Keys of a JSON object in document order.
std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

// The edited text with every edited span replaced back by its original bytes.
std::string Unedit(const Document& doc) {
  std::string text = doc.Dump();
  const auto& edits = doc.edits();
  for (auto e = edits.rbegin(); e != edits.rend(); ++e)
    text.replace(e->offset, e->length, e->original);
  return text;
}

// (original bytes, new bytes) of each edit.
std::vector<std::pair<std::string, std::string>> EditPairs(const Document& doc) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& e : doc.edits())
    pairs.emplace_back(e.original, doc.Dump().substr(e.offset, e.length));
  return pairs;
}

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// ---------------------------------------------------------------------------------------------
// Knobs

TEST(RewriteTest, OnlyTheTunedValuesChange) {
  Document doc = Document::Parse(kOdd, kOrigin);
  doc.SetKnob("files", kKnobParallelism, 4);   // new key, one-line stage
  doc.SetKnob("read", kKnobParallelism, 8);    // existing key, no spaces at all
  doc.SetKnob("decode", kKnobParallelism, 6);  // existing key, members on separate lines
  doc.SetKnob("decode", kKnobBufferSize, 16);  // new key, members on separate lines
  doc.SetKnob("crop", kKnobParallelism, 3);    // new key, 1-space indent and " : "
  doc.SetKnob("batch", kKnobDeterministic, false);
  doc.SetKnob("batch", kKnobBufferSize, 32);

  // The result re-parses to the tuned document, keys in their original order.
  Json expected = Json::parse(kOdd);
  expected["stages"][0]["parallelism"] = 4;
  expected["stages"][1]["parallelism"] = 8;
  expected["stages"][2]["parallelism"] = 6;
  expected["stages"][2]["buffer_size"] = 16;
  expected["stages"][3]["parallelism"] = 3;
  expected["stages"][4]["deterministic"] = false;
  expected["stages"][4]["buffer_size"] = 32;
  const Json reparsed = Json::parse(doc.Dump());
  EXPECT_EQ(reparsed, expected);
  EXPECT_THAT(Keys(reparsed), ElementsAre("name", "x_owner", "stages", "x_trailer", "epochs"));
  EXPECT_THAT(Keys(reparsed["stages"][0]),
              ElementsAre("name", "op", "args", "x_note", "parallelism"));
  EXPECT_THAT(Keys(reparsed["stages"][2]),
              ElementsAre("name", "op", "x_weight", "parallelism", "buffer_size"));
  // The "parallelism" inside args is an op argument, not the knob.
  EXPECT_EQ(reparsed["stages"][0]["args"]["parallelism"], 9);
  EXPECT_EQ(reparsed["stages"][3]["args"]["parallelism"], 1);
  EXPECT_EQ(doc.Stage("crop").parallelism, 3);
  EXPECT_EQ(doc.Stage("batch").buffer_size, 32);

  // Every byte outside the tuned values is the original's.
  EXPECT_EQ(Unedit(doc), kOdd);
  EXPECT_EQ(doc.original_text(), kOdd);
  // And the edits are exactly the tuned values, new keys in their neighbours' style (an edit
  // that touches another merges with it).
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(EditPairs(doc), ElementsAre(Pair{"", ", \"parallelism\": 4"}, Pair{"1", "8"},
                                          Pair{"2", "6,\n\t\t    \"buffer_size\": 16"},
                                          Pair{"", ",\n \"parallelism\" : 3"}, Pair{"1", "32"},
                                          Pair{"true", "false"}));
  EXPECT_THAT(doc.Dump(), HasSubstr("\"x_weight\": 1.0e3"));
  EXPECT_THAT(doc.Dump(), HasSubstr("[1.0e3, -2E-2, 0.5]"));
  EXPECT_EQ(doc.text(), doc.Dump());
  // The edited text loads back to the same document.
  EXPECT_EQ(Document::Parse(doc.Dump(), kOrigin).json(), doc.json());
}

TEST(RewriteTest, SettingAKnobTwiceOrBackLeavesOneOrNoEdit) {
  Document doc = Document::Parse(kOdd, kOrigin);
  doc.SetKnob("decode", kKnobBufferSize, 16);
  doc.SetKnob("decode", kKnobBufferSize, 128);
  EXPECT_THAT(EditPairs(doc), ElementsAre(std::pair<std::string, std::string>{
                                  "", ",\n\t\t    \"buffer_size\": 128"}));
  doc.SetKnob("read", kKnobParallelism, 5);
  doc.SetKnob("read", kKnobParallelism, 1);  // back to the original value
  EXPECT_EQ(doc.edits().size(), 1u);
  EXPECT_EQ(Unedit(doc), kOdd);
}

TEST(RewriteTest, CompactTextGetsCompactInsertions) {
  const std::string text = R"({"stages":[{"op":"generate"},{"op":"burn","args":{"cpu_us":1}}]})";
  Document doc = Document::Parse(text, kOrigin);
  doc.SetKnob("burn", kKnobParallelism, 2);
  doc.SetKnob("generate", kKnobBufferSize, 4);  // a single member: one space after the comma
  EXPECT_EQ(doc.Dump(), R"({"stages":[{"op":"generate", "buffer_size":4},)"
                        R"({"op":"burn","args":{"cpu_us":1},"parallelism":2}]})");
}

TEST(RewriteTest, ABadValueLeavesTextAndEditsUnchanged) {
  Document doc = Document::Parse(kOdd, kOrigin);
  doc.SetKnob("read", kKnobParallelism, 8);
  const std::string before = doc.Dump();
  EXPECT_THROW(doc.SetKnob("decode", kKnobParallelism, 0), Error);
  EXPECT_THROW(doc.SetKnob("crop", kKnobBufferSize, -3), Error);
  EXPECT_EQ(doc.Dump(), before);
  EXPECT_EQ(doc.edits().size(), 1u);
  EXPECT_EQ(Json::parse(doc.Dump()), doc.json());
  EXPECT_EQ(Unedit(doc), kOdd);
}

// ---------------------------------------------------------------------------------------------
// Stages

TEST(RewriteTest, InsertAndRemoveACacheStageRoundTrips) {
  const Json cache = {{"name", "cache"}, {"op", "cache"}};
  for (size_t index : {0u, 1u, 2u, 3u, 4u, 5u, 99u}) {
    Document doc = Document::Parse(kOdd, kOrigin);
    doc.InsertStage(index, cache);
    const size_t at = std::min<size_t>(index, 5);
    EXPECT_EQ(doc.stages().size(), 6u);
    EXPECT_EQ(doc.Stage("cache").index, at) << index;
    Json expected = Json::parse(kOdd);
    expected["stages"].insert(expected["stages"].begin() + static_cast<std::ptrdiff_t>(at), cache);
    EXPECT_EQ(Json::parse(doc.Dump()), expected) << index;
    ASSERT_EQ(doc.edits().size(), 1u);
    EXPECT_EQ(doc.edits()[0].original, "");  // a pure insertion
    EXPECT_EQ(Unedit(doc), kOdd);
    doc.RemoveStage("cache");
    EXPECT_EQ(doc.Dump(), kOdd) << index;
    EXPECT_THAT(doc.edits(), IsEmpty());
    EXPECT_EQ(doc.stages().size(), 5u);
  }
}

TEST(RewriteTest, InsertedStagesFollowTheirNeighboursLayout) {
  Document doc = Document::Parse(kOdd, kOrigin);
  // Before a one-line stage: one line, followed by the separator the file uses there.
  doc.InsertStage(1, {{"name", "c1"}, {"op", "cache"}});
  EXPECT_THAT(EditPairs(doc), ElementsAre(std::pair<std::string, std::string>{
                                  "", "{\"name\":\"c1\",\"op\":\"cache\"},\n    "}));
  doc.RemoveStage("c1");
  // Before a multi-line stage: members on their own lines with its indentation.
  doc.InsertStage(2, {{"name", "c2"}, {"op", "cache"}, {"args", {{"path", "x"}}}});
  EXPECT_THAT(EditPairs(doc),
              ElementsAre(std::pair<std::string, std::string>{
                  "",
                  "{\n\t\t    \"name\": \"c2\",\n\t\t    \"op\": \"cache\",\n\t\t    \"args\": "
                  "{\"path\": \"x\"}\n\t\t},\n\t\t"}));
  EXPECT_EQ(Json::parse(doc.Dump()), doc.json());
}

TEST(RewriteTest, MovingAStageKeepsEverythingElse) {
  Document doc = Document::Parse(kOdd, kOrigin);
  doc.InsertStage(2, {{"op", "cache"}});
  doc.SetKnob("decode", kKnobParallelism, 7);
  doc.RemoveStage("cache");
  doc.InsertStage(4, {{"op", "cache"}});
  EXPECT_EQ(doc.Stage("cache").index, 4u);
  EXPECT_EQ(doc.Stage("decode").parallelism, 7);
  EXPECT_EQ(Unedit(doc), kOdd);
  EXPECT_EQ(doc.edits().size(), 2u);
}

TEST(RewriteTest, RemovingAnOriginalStageTakesItsCommaAlong) {
  const std::string text =
      "{\"stages\": [\n  {\"op\": \"generate\"},\n  {\"op\": \"burn\"},\n"
      "  {\"op\": \"sleep\"}\n]}\n";
  Document first = Document::Parse(text, kOrigin);
  first.RemoveStage("generate");
  EXPECT_EQ(first.Dump(), "{\"stages\": [\n  {\"op\": \"burn\"},\n  {\"op\": \"sleep\"}\n]}\n");
  Document middle = Document::Parse(text, kOrigin);
  middle.RemoveStage("burn");
  EXPECT_EQ(middle.Dump(),
            "{\"stages\": [\n  {\"op\": \"generate\"},\n  {\"op\": \"sleep\"}\n]}\n");
  Document last = Document::Parse(text, kOrigin);
  last.RemoveStage("sleep");
  EXPECT_EQ(last.Dump(), "{\"stages\": [\n  {\"op\": \"generate\"},\n  {\"op\": \"burn\"}\n]}\n");
  // Stage names follow the remaining stages.
  EXPECT_EQ(last.Stage("burn").index, 1u);
}

TEST(RewriteTest, StageEditsThatBreakTheDocumentAreRolledBack) {
  Document one = Document::Parse(R"({"stages": [{"op": "generate"}]})", kOrigin);
  EXPECT_THROW(one.RemoveStage("generate"), Error);  // stages may not become empty
  EXPECT_EQ(one.Dump(), R"({"stages": [{"op": "generate"}]})");
  EXPECT_EQ(one.stages().size(), 1u);
  EXPECT_THROW(one.InsertStage(0, {{"name", "x"}}), Error);                         // no op
  EXPECT_THROW(one.InsertStage(1, {{"name", "generate"}, {"op", "burn"}}), Error);  // duplicate
  EXPECT_THROW(one.InsertStage(0, Json(3)), Error);
  EXPECT_THROW(one.RemoveStage("nope"), Error);
  EXPECT_EQ(one.Dump(), R"({"stages": [{"op": "generate"}]})");
  EXPECT_THAT(one.edits(), IsEmpty());
  // A single stage: the insertion copies the array's layout.
  one.InsertStage(1, {{"op", "cache"}});
  EXPECT_EQ(one.Dump(), R"({"stages": [{"op": "generate"}, {"op": "cache"}]})");
}

// ---------------------------------------------------------------------------------------------
// Line endings

TEST(RewriteTest, CrlfStaysCrlf) {
  const std::string text =
      "{\r\n  \"stages\": [\r\n    {\r\n      \"op\": \"generate\"\r\n    },\r\n"
      "    {\"op\": \"burn\"}\r\n  ]\r\n}\r\n";
  Document doc = Document::Parse(text, kOrigin);
  doc.SetKnob("generate", kKnobBufferSize, 2);
  doc.InsertStage(0, {{"op", "cache"}, {"name", "c"}});  // like the multi-line stage after it
  doc.SetKnob("burn", kKnobParallelism, 2);
  EXPECT_EQ(
      doc.Dump(),
      "{\r\n  \"stages\": [\r\n    {\r\n      \"op\": \"cache\",\r\n      \"name\": \"c\"\r\n"
      "    },\r\n    {\r\n      \"op\": \"generate\",\r\n      \"buffer_size\": 2\r\n    },\r\n"
      "    {\"op\": \"burn\", \"parallelism\": 2}\r\n  ]\r\n}\r\n");
  EXPECT_EQ(Unedit(doc), text);
  doc.RemoveStage("c");
  doc.SetKnob("burn", kKnobParallelism, 1);
  // No bare line feed anywhere.
  for (size_t i = 0; i < doc.Dump().size(); ++i) {
    if (doc.Dump()[i] == '\n') {
      EXPECT_EQ(doc.Dump()[i - 1], '\r') << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Files

class RewriteFileTest : public sluice::test_util::TempDirTest {
 protected:
  void TearDown() override {
    // A test makes the directory read-only: give write back so that it can be removed.
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add);
    TempDirTest::TearDown();
  }
};

TEST_F(RewriteFileTest, SaveKeepsTheOriginalAsABackup) {
  const std::filesystem::path path = dir_ / "pipeline.json";
  WriteFile(path, kOdd);
  ::chmod(path.c_str(), 0640);
  Document doc = Document::Load(path);
  doc.SetKnob("decode", kKnobParallelism, 12);
  doc.Save(path, dir_ / "pipeline.json.bak");
  EXPECT_EQ(ReadFile(dir_ / "pipeline.json.bak"), kOdd);
  EXPECT_EQ(ReadFile(path), doc.Dump());
  EXPECT_THAT(DirEntries(), ElementsAre("pipeline.json", "pipeline.json.bak"));  // no temporary
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);  // the rewritten file keeps the original's permissions
  EXPECT_EQ(Document::Load(path).Stage("decode").parallelism, 12);
}

TEST_F(RewriteFileTest, SaveToANewPathMakesNoBackup) {
  Document doc = Document::Parse(kOdd, kOrigin);
  doc.Save(dir_ / "new.json", dir_ / "new.json.bak");
  EXPECT_THAT(DirEntries(), ElementsAre("new.json"));
  EXPECT_EQ(ReadFile(dir_ / "new.json"), kOdd);  // an unedited document saves its exact bytes
}

TEST_F(RewriteFileTest, SaveIntoAReadOnlyDirectoryFailsAndLeavesTheOriginal) {
  const std::filesystem::path path = dir_ / "pipeline.json";
  WriteFile(path, kOdd);
  Document doc = Document::Load(path);
  doc.SetKnob("read", kKnobParallelism, 3);
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  if (std::ofstream(dir_ / "probe")) {
    std::filesystem::remove(dir_ / "probe");
    GTEST_SKIP() << "the directory permissions do not stop this user (root)";
  }
  try {
    doc.Save(path, dir_ / "pipeline.json.bak");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ": cannot write: Permission denied");
  }
  EXPECT_EQ(ReadFile(path), kOdd);
  EXPECT_THAT(DirEntries(), ElementsAre("pipeline.json"));
}

TEST_F(RewriteFileTest, SaveIntoAReadOnlyFileSystemNamesThePath) {
  // sysfs refuses new files even to root.
  const std::filesystem::path path = "/sys/sluice_rewrite_test.json";
  if (!std::filesystem::is_directory("/sys")) GTEST_SKIP() << "no /sys";
  Document doc = Document::Parse(kOdd, kOrigin);
  try {
    doc.Save(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::StartsWith(path.string() + ": cannot write: "));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(RewriteFileTest, CrlfFileSavesAsCrlf) {
  const std::filesystem::path path = dir_ / "crlf.json";
  const std::string text = "{\r\n  \"stages\": [\r\n    {\"op\": \"generate\"}\r\n  ]\r\n}\r\n";
  WriteFile(path, text);
  Document doc = Document::Load(path);
  doc.SetKnob("generate", kKnobBufferSize, 8);
  doc.Save(path);
  EXPECT_EQ(
      ReadFile(path),
      "{\r\n  \"stages\": [\r\n    {\"op\": \"generate\", \"buffer_size\": 8}\r\n  ]\r\n}\r\n");
}

}  // namespace
}  // namespace sluice::config
