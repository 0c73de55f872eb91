// Tests of ApplyTuned (carrying tuned knobs onto the original config) and UnifiedDiff.
#include "sluice/config/merge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"

namespace sluice::config {
namespace {

using ::testing::HasSubstr;

constexpr char kOriginal[] = R"({
  "name": "p",   "note": "kept",
  "stages": [
    {"name": "files", "op": "list_files", "args": {"pattern": "*.jpg"}},
    {"name": "decode", "op": "decode_jpeg",
     "parallelism": 1},
    {"name": "batch", "op": "batch", "args": {"size": 8}}
  ]
}
)";

constexpr char kTuned[] = R"({"name": "p", "stages": [
  {"name": "files", "op": "list_files", "args": {"pattern": "*.jpg"}},
  {"name": "decode", "op": "decode_jpeg", "parallelism": 4, "buffer_size": 8},
  {"name": "cache", "op": "cache"},
  {"name": "batch", "op": "batch", "args": {"size": 8}, "buffer_size": 2}]}
)";

TEST(ApplyTunedTest, CarriesKnobsAndCacheAndKeepsEverythingElse) {
  Document tuned = Document::Parse(kTuned, "out/tuned.json");
  Document target = Document::Parse(kOriginal, "p.json");
  auto changes = ApplyTuned(tuned, target);
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(target.Stage("decode").parallelism, 4);
  EXPECT_EQ(target.Stage("decode").buffer_size, 8);
  EXPECT_EQ(target.Stage("batch").buffer_size, 2);
  ASSERT_EQ(target.stages().size(), 4u);
  EXPECT_EQ(target.stages()[2].op, "cache");
  // Bytes outside the changes are kept: the odd spacing and the unknown key survive.
  EXPECT_THAT(target.text(), HasSubstr(R"("name": "p",   "note": "kept",)"));
  EXPECT_THAT(target.text(), HasSubstr("\"parallelism\": 4,\n     \"buffer_size\": 8}"));
  // Applying again changes nothing.
  EXPECT_TRUE(ApplyTuned(tuned, target).empty());
}

TEST(ApplyTunedTest, AStageTheTargetLacksIsAnError) {
  Document tuned = Document::Parse(
      R"({"stages": [{"name": "src", "op": "generate"}, {"name": "extra", "op": "burn", "args": {"cpu_us": 1}}]})",
      "t.json");
  Document target = Document::Parse(R"({"stages": [{"name": "src", "op": "generate"}]})", "p.json");
  try {
    ApplyTuned(tuned, target);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage 'extra' (burn) is not in p.json"));
  }
}

TEST(UnifiedDiffTest, ShowsChangedLinesWithContext) {
  const std::string before = "a\nb\nc\nd\ne\nf\ng\nh\n";
  const std::string after = "a\nb\nc\nD\ne\nf\ng\nh\n";
  EXPECT_EQ(UnifiedDiff(before, after, "x.json"),
            "--- x.json\n+++ x.json (tuned)\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n");
  EXPECT_EQ(UnifiedDiff(before, before, "x.json"), "");
}

TEST(UnifiedDiffTest, InsertionsAndFarApartChangesMakeSeparateHunks) {
  std::string before, after;
  for (int i = 0; i < 20; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 ? std::string("two\n") : std::to_string(i) + "\n");
    if (i == 15) after += "new\n";
  }
  std::string diff = UnifiedDiff(before, after, "f");
  EXPECT_THAT(diff, HasSubstr("@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+two\n 3\n 4\n 5\n"));
  EXPECT_THAT(diff, HasSubstr("@@ -14,6 +14,7 @@\n 13\n 14\n 15\n+new\n 16\n 17\n 18\n"));
}

}  // namespace
}  // namespace sluice::config
