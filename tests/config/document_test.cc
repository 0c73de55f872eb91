// Tests for the config document: every validation error with its exact message, stage naming,
// warnings, round-tripping unknown keys, setting knobs, and atomic saving (byte-preserving
// rewrites in detail: rewrite_test.cc).
#include "sluice/config/document.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice::config {
namespace {

using test_util::ReadFile;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr char kOrigin[] = "cfg/p.json";

// The message Document::Parse(text, kOrigin) throws; fails the test when it does not throw.
std::string ParseError(const std::string& text) {
  try {
    Document::Parse(text, kOrigin);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

// A config with one generate stage plus `stage` (a JSON object text).
std::string WithStage(const std::string& stage) {
  return R"({"stages": [{"name": "gen", "op": "generate", "args": {"count": 4}}, )" + stage + "]}";
}

// Keys of a JSON object in document order.
std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Syntax and shape errors

TEST(DocumentErrorTest, SyntaxErrorNamesFileLineAndColumn) {
  // Line 3 lacks its trailing comma: the parser stops at the end of the next key on line 4.
  const std::string text =
      "{\n"
      "  \"name\": \"x\",\n"
      "  \"epochs\": 1\n"
      "  \"stages\": []\n"
      "}\n";
  EXPECT_EQ(ParseError(text),
            "cfg/p.json:4:10: invalid JSON: syntax error while parsing object - unexpected string "
            "literal; expected '}'");
}

TEST(DocumentErrorTest, MissingCommaOnLineThree) {
  const std::string text =
      "{\n"
      "  \"name\": \"x\"\n"
      "  \"stages\": []\n"
      "}\n";
  std::string message = ParseError(text);
  EXPECT_THAT(message, StartsWith("cfg/p.json:3:"));
  EXPECT_EQ(message,
            "cfg/p.json:3:10: invalid JSON: syntax error while parsing object - unexpected string "
            "literal; expected '}'");
}

TEST(DocumentErrorTest, TrailingCommaPointsAtTheBrace) {
  EXPECT_EQ(ParseError("{\"stages\": [\n  {\"op\": \"generate\",}\n]}"),
            "cfg/p.json:2:21: invalid JSON: syntax error while parsing object key - unexpected "
            "'}'; expected string literal");
}

TEST(DocumentErrorTest, EmptyText) {
  EXPECT_EQ(ParseError(""),
            "cfg/p.json:1:1: invalid JSON: syntax error while parsing value - unexpected end of "
            "input; expected '[', '{', or a literal");
}

// Found by fuzz/config_fuzz: nlohmann reports a number overflow as out_of_range, not parse_error.
TEST(DocumentErrorTest, NumberTooLargeForADoubleIsASyntaxError) {
  EXPECT_EQ(ParseError(R"({"epochs": 1e3080, "stages": []})"),
            "cfg/p.json: invalid JSON: number overflow parsing '1e3080'");
}

TEST(DocumentErrorTest, TopLevelNotAnObject) {
  const std::string expected =
      "cfg/p.json: expected a JSON object with a \"stages\" array at the top level";
  EXPECT_EQ(ParseError("[1, 2]"), expected);
  EXPECT_EQ(ParseError("\"stages\""), expected);
  EXPECT_EQ(ParseError("null"), expected);
}

TEST(DocumentErrorTest, MissingStages) {
  EXPECT_EQ(ParseError(R"({"name": "x"})"),
            "cfg/p.json: key 'stages': missing: a config needs a stages array");
}

TEST(DocumentErrorTest, EmptyOrNonArrayStages) {
  const std::string expected =
      "cfg/p.json: key 'stages': expected a non-empty array of stage objects";
  EXPECT_EQ(ParseError(R"({"stages": []})"), expected);
  EXPECT_EQ(ParseError(R"({"stages": {"op": "generate"}})"), expected);
}

TEST(DocumentErrorTest, StageNotAnObject) {
  EXPECT_EQ(ParseError(R"({"stages": [{"op": "generate"}, 3]})"),
            "cfg/p.json: stage #2: key 'stages': expected a stage object, got 3");
}

TEST(DocumentErrorTest, MissingOp) {
  EXPECT_EQ(ParseError(WithStage(R"({"parallelism": 2})")),
            "cfg/p.json: stage #2: key 'op': missing: every stage names its op");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map"})")),
            "cfg/p.json: stage 'map': key 'op': missing: every stage names its op");
}

TEST(DocumentErrorTest, OpNotAString) {
  EXPECT_EQ(ParseError(WithStage(R"({"op": 7})")),
            "cfg/p.json: stage #2: key 'op': expected a string, got 7");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": ["burn"]})")),
            "cfg/p.json: stage 'map': key 'op': expected a string, got [\"burn\"]");
}

TEST(DocumentErrorTest, BadName) {
  EXPECT_EQ(ParseError(WithStage(R"({"name": "", "op": "burn"})")),
            "cfg/p.json: stage #2: key 'name': expected a non-empty string, got \"\"");
  EXPECT_EQ(ParseError(R"({"name": 3, "stages": [{"op": "generate"}]})"),
            "cfg/p.json: key 'name': expected a string, got 3");
}

TEST(DocumentErrorTest, BadParallelism) {
  EXPECT_EQ(
      ParseError(WithStage(R"({"name": "map", "op": "burn", "parallelism": 0})")),
      "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to 1024, got 0");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "parallelism": "two"})")),
            "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to 1024, got "
            "\"two\"");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "parallelism": 2000})")),
            "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to 1024, got "
            "2000");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "parallelism": 2.5})")),
            "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to 1024, got "
            "2.5");
}

TEST(DocumentErrorTest, BadBufferSize) {
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "buffer_size": -1})")),
            "cfg/p.json: stage 'map': key 'buffer_size': expected an integer from 0 to 16777216, "
            "got -1");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "buffer_size": 16777217})")),
            "cfg/p.json: stage 'map': key 'buffer_size': expected an integer from 0 to 16777216, "
            "got 16777217");
}

TEST(DocumentErrorTest, DeterministicNotBool) {
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "deterministic": "no"})")),
            "cfg/p.json: stage 'map': key 'deterministic': expected true or false, got \"no\"");
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "allow_reorder": 1})")),
            "cfg/p.json: stage 'map': key 'allow_reorder': expected true or false, got 1");
}

TEST(DocumentErrorTest, ArgsNotObject) {
  EXPECT_EQ(ParseError(WithStage(R"({"name": "map", "op": "burn", "args": [1000]})")),
            "cfg/p.json: stage 'map': key 'args': expected an object, got [1000]");
}

TEST(DocumentErrorTest, DuplicateNames) {
  EXPECT_EQ(
      ParseError(WithStage(R"({"name": "gen", "op": "burn"})")),
      "cfg/p.json: stage 'gen': key 'name': duplicate stage name: stage names must be unique");
}

TEST(DocumentErrorTest, BadEpochs) {
  for (const char* epochs : {"0", "-2", "1.5", "\"3\"", "true", "18446744073709551615"}) {
    EXPECT_EQ(
        ParseError(std::string(R"({"epochs": )") + epochs + R"(, "stages": [{"op": "generate"}]})"),
        std::string("cfg/p.json: key 'epochs': expected an integer >= 1, or -1 to repeat "
                    "forever, got ") +
            epochs)
        << epochs;
  }
}

TEST(DocumentErrorTest, LoadOfMissingFileNamesThePath) {
  const std::filesystem::path missing =
      std::filesystem::temp_directory_path() / "sluice_document_test_no_such_dir" / "p.json";
  try {
    Document::Load(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              missing.string() + ": cannot read config: No such file or directory");
  }
}

// ---------------------------------------------------------------------------------------------
// Valid documents

TEST(DocumentTest, DefaultsAndParsedKnobs) {
  Document doc = Document::Parse(R"({
    "stages": [
      {"op": "generate", "args": {"count": 4}},
      {"name": "map", "op": "burn", "parallelism": 3, "buffer_size": 8, "deterministic": false,
       "allow_reorder": true, "args": {"cpu_us": 10}}
    ]})",
                                 kOrigin);
  EXPECT_EQ(doc.name(), "p");  // the file's stem when the config has no name
  EXPECT_EQ(doc.epochs(), 1);
  EXPECT_EQ(doc.base_dir(), std::filesystem::path("cfg"));
  ASSERT_EQ(doc.stages().size(), 2u);
  const StageSpec& gen = doc.stages()[0];
  EXPECT_EQ(gen.index, 0u);
  EXPECT_EQ(gen.op, "generate");
  EXPECT_FALSE(gen.parallelism.has_value());
  EXPECT_FALSE(gen.buffer_size.has_value());
  EXPECT_FALSE(gen.deterministic.has_value());
  EXPECT_FALSE(gen.allow_reorder);
  EXPECT_EQ(gen.args, Json::parse(R"({"count": 4})"));
  const StageSpec& map = doc.stages()[1];
  EXPECT_EQ(map.index, 1u);
  EXPECT_EQ(map.parallelism, 3);
  EXPECT_EQ(map.buffer_size, 8);
  EXPECT_EQ(map.deterministic, false);
  EXPECT_TRUE(map.allow_reorder);
  EXPECT_THAT(doc.warnings(), IsEmpty());
}

TEST(DocumentTest, NameAndEpochsFromTheConfig) {
  Document doc = Document::Parse(
      R"({"name": "train", "epochs": -1, "stages": [{"op": "generate"}]})", "p.json");
  EXPECT_EQ(doc.name(), "train");
  EXPECT_EQ(doc.epochs(), -1);
  EXPECT_EQ(doc.base_dir(), std::filesystem::path("."));
}

TEST(DocumentTest, UnnamedStagesAreCalledAfterTheirOp) {
  Document doc = Document::Parse(R"({"stages": [
      {"op": "generate"}, {"op": "burn"}, {"op": "burn"}, {"name": "burn_3", "op": "sleep"},
      {"op": "burn"}]})",
                                 kOrigin);
  std::vector<std::string> names;
  for (const StageSpec& s : doc.stages()) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre("generate", "burn", "burn_2", "burn_3", "burn_4"));
  // The generated names are not written into the document.
  EXPECT_FALSE(doc.json()["stages"][1].contains("name"));
}

TEST(DocumentTest, StageLooksUpByName) {
  Document doc =
      Document::Parse(R"({"stages": [{"op": "generate"}, {"name": "b", "op": "burn"}]})", kOrigin);
  EXPECT_EQ(doc.Stage("b").index, 1u);
  EXPECT_EQ(doc.Stage("generate").op, "generate");
  try {
    doc.Stage("nope");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cfg/p.json: no stage named 'nope' (stages: generate, b)");
  }
}

TEST(DocumentTest, WarnsAboutAMisspeltKnob) {
  Document doc = Document::Parse(
      WithStage(R"({"name": "map", "op": "burn", "paralelism": 4, "comment": "kept quietly"})"),
      kOrigin);
  EXPECT_THAT(doc.warnings(),
              ElementsAre("cfg/p.json: stage 'map': unknown key 'paralelism' (did you mean "
                          "'parallelism'?) is kept but has no effect"));
  EXPECT_FALSE(doc.Stage("map").parallelism.has_value());
}

TEST(DocumentTest, DumpKeepsKeyOrderAndUnknownKeys) {
  const std::string text = R"({
    "zeta": {"owner": "team-a"},
    "stages": [
      {"op": "generate", "x_note": "first", "args": {"count": 4, "bytes": 2}},
      {"parallelism": 2, "op": "burn", "name": "map", "x_tag": [1, 2]}
    ],
    "name": "ordered",
    "alpha": 1
  })";
  Document doc = Document::Parse(text, kOrigin);
  Json dumped = Json::parse(doc.Dump());
  EXPECT_THAT(Keys(dumped), ElementsAre("zeta", "stages", "name", "alpha"));
  EXPECT_THAT(Keys(dumped["stages"][0]), ElementsAre("op", "x_note", "args"));
  EXPECT_THAT(Keys(dumped["stages"][0]["args"]), ElementsAre("count", "bytes"));
  EXPECT_THAT(Keys(dumped["stages"][1]), ElementsAre("parallelism", "op", "name", "x_tag"));
  EXPECT_EQ(dumped, Json::parse(text));
  EXPECT_EQ(doc.Dump(), text);  // an unedited document dumps its exact bytes
  // Dumping a parsed dump changes nothing.
  EXPECT_EQ(Document::Parse(doc.Dump(), kOrigin).Dump(), doc.Dump());
}

TEST(DocumentTest, SetKnobChangesOnlyThatKey) {
  const std::string text = R"({"name": "n", "extra": true, "stages": [
      {"op": "generate", "args": {"count": 4}},
      {"name": "map", "op": "burn", "x_note": "keep", "parallelism": 1, "args": {"cpu_us": 5}}]})";
  Document doc = Document::Parse(text, kOrigin);
  doc.SetKnob("map", kKnobParallelism, 6);
  doc.SetKnob("map", kKnobBufferSize, 4);
  doc.SetKnob("generate", kKnobDeterministic, true);
  EXPECT_EQ(doc.Stage("map").parallelism, 6);
  EXPECT_EQ(doc.Stage("map").buffer_size, 4);
  EXPECT_EQ(doc.Stage("generate").deterministic, true);

  Json expected = Json::parse(text);
  expected["stages"][1]["parallelism"] = 6;  // replaced in place
  expected["stages"][1]["buffer_size"] = 4;  // appended after the existing keys
  expected["stages"][0]["deterministic"] = true;
  Json dumped = Json::parse(doc.Dump());
  EXPECT_EQ(dumped, expected);
  EXPECT_THAT(Keys(dumped["stages"][1]),
              ElementsAre("name", "op", "x_note", "parallelism", "args", "buffer_size"));
  EXPECT_THAT(Keys(dumped["stages"][0]), ElementsAre("op", "args", "deterministic"));
  // Only the knobs' bytes change; the rest of the text, spacing included, is kept.
  EXPECT_EQ(doc.Dump(), R"({"name": "n", "extra": true, "stages": [
      {"op": "generate", "args": {"count": 4}, "deterministic": true},
      {"name": "map", "op": "burn", "x_note": "keep", "parallelism": 6, "args": {"cpu_us": 5}, "buffer_size": 4}]})");
  EXPECT_EQ(doc.original_text(), text);
}

TEST(DocumentTest, SetKnobRejectsABadValueAndLeavesTheDocumentUnchanged) {
  Document doc =
      Document::Parse(WithStage(R"({"name": "map", "op": "burn", "parallelism": 2})"), kOrigin);
  const std::string before = doc.Dump();
  try {
    doc.SetKnob("map", kKnobParallelism, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to 1024, "
              "got 0");
  }
  try {
    doc.SetKnob("map", kKnobDeterministic, "yes");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cfg/p.json: stage 'map': key 'deterministic': expected true or false, got \"yes\"");
  }
  try {
    doc.SetKnob("map", "op", "sleep");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cfg/p.json: stage 'map': key 'op': not a tunable knob (knobs: parallelism, "
              "buffer_size, deterministic)");
  }
  EXPECT_THROW(doc.SetKnob("nope", kKnobParallelism, 2), Error);
  EXPECT_EQ(doc.Dump(), before);
  EXPECT_EQ(doc.Stage("map").parallelism, 2);
  EXPECT_EQ(doc.stages().size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Files

using DocumentFileTest = sluice::test_util::TempDirTest;

TEST_F(DocumentFileTest, LoadReadsTheFileAndAnchorsRelativePaths) {
  const std::filesystem::path path = dir_ / "train.json";
  std::ofstream(path) << R"({"stages": [{"op": "generate"}]})";
  Document doc = Document::Load(path);
  EXPECT_EQ(doc.origin(), path);
  EXPECT_EQ(doc.base_dir(), dir_);
  EXPECT_EQ(doc.name(), "train");
  EXPECT_EQ(doc.text(), R"({"stages": [{"op": "generate"}]})");
}

TEST_F(DocumentFileTest, LoadErrorsNameTheLoadedPath) {
  const std::filesystem::path path = dir_ / "bad.json";
  std::ofstream(path) << "{\"stages\": [}";
  try {
    Document::Load(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), StartsWith(path.string() + ":1:13: invalid JSON: "));
  }
}

TEST_F(DocumentFileTest, SaveReplacesTheFileAtomically) {
  const std::filesystem::path path = dir_ / "p.json";
  std::ofstream(path) << "old contents";
  const auto inode_before = [&] {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_ino;
  }();
  Document doc =
      Document::Parse(WithStage(R"({"name": "map", "op": "burn", "x_note": "kept"})"), kOrigin);
  doc.SetKnob("map", kKnobParallelism, 3);
  doc.Save(path);
  EXPECT_EQ(ReadFile(path), doc.Dump());
  // A rename installs a new file rather than rewriting the old one in place.
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_NE(st.st_ino, inode_before);
  EXPECT_THAT(DirEntries(), ElementsAre("p.json"));  // no temporary file left behind

  Document again = Document::Load(path);
  EXPECT_EQ(again.Stage("map").parallelism, 3);
  EXPECT_EQ(again.Dump(), doc.Dump());
}

TEST_F(DocumentFileTest, SaveIntoAMissingDirectoryFailsAndLeavesNothing) {
  Document doc = Document::Parse(R"({"stages": [{"op": "generate"}]})", kOrigin);
  const std::filesystem::path path = dir_ / "missing" / "p.json";
  try {
    doc.Save(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ": cannot write: No such file or directory");
  }
  EXPECT_THAT(DirEntries(), IsEmpty());
}

}  // namespace
}  // namespace sluice::config
