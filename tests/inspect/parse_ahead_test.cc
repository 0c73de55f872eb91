// The inspected files parsed ahead of their analysis (src/inspect/parse_ahead.h): taken in
// order, errors handed to whoever takes the file, and a file the analysis follows into lent
// from the parses instead of parsed twice.
#include "inspect/parse_ahead.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "tests/common/harness.h"

namespace sluice::inspect {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The main file a unit was parsed from.
std::string MainFile(CXTranslationUnit unit) {
  return internal::Take(clang_getTranslationUnitSpelling(unit));
}

TEST(ParseAheadTest, FilesAreTakenInOrderAndAFailedParseIsTheTakersError) {
  const test_util::TempDir dir("sluice_parse_ahead");
  std::vector<std::string> files;
  for (const char* name : {"a.cc", "missing.cc", "c.cc", "d.cc", "e.cc"}) {
    files.push_back((dir / name).string());
    if (std::string(name) != "missing.cc") std::ofstream(dir / name) << "int f() { return 1; }\n";
  }
  const InspectOptions o;
  internal::ParseAhead parses(files, o, nullptr, /*threads=*/2, /*ahead=*/2);
  const auto a = parses.Take(0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(MainFile(a->unit.get()), files[0]);
  try {
    parses.Take(1);
    ADD_FAILURE() << "the missing file's parse did not fail";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.cc: no such file"));
  }
  EXPECT_EQ(MainFile(parses.Take(2)->unit.get()), files[2]);
  // d.cc and e.cc are never taken: the destructor waits for what is under way, and returns.
}

// A file within the bound is lent (the same unit its Take then returns); a file beyond it, one
// already taken, or one not among the files is not, so the caller parses it itself.
TEST(ParseAheadTest, AFileWithinTheBoundIsLentAndTakenLater) {
  const test_util::TempDir dir("sluice_parse_ahead_lend");
  std::vector<std::string> files;
  for (const char* name : {"a.cc", "b.cc", "c.cc", "other.cc"}) {
    std::ofstream(dir / name) << "int f() { return 2; }\n";
    if (std::string(name) != "other.cc") files.push_back((dir / name).string());
  }
  const std::string c = fs::weakly_canonical(dir / "c.cc").string();
  const InspectOptions o;
  internal::ParseAhead parses(files, o, nullptr, /*threads=*/1, /*ahead=*/2);
  EXPECT_EQ(parses.Borrow(c), nullptr);  // index 2, and nothing taken: beyond the bound
  const auto a = parses.Take(0);
  const CXTranslationUnit lent = parses.Borrow(c);
  ASSERT_NE(lent, nullptr);
  EXPECT_EQ(MainFile(lent), files[2]);
  EXPECT_EQ(parses.Borrow(fs::weakly_canonical(dir / "a.cc").string()), nullptr);  // taken
  EXPECT_EQ(parses.Borrow(fs::weakly_canonical(dir / "other.cc").string()), nullptr);
  parses.Take(1);
  const auto taken = parses.Take(2);
  EXPECT_EQ(taken->unit.get(), lent);
  EXPECT_EQ(parses.Borrow(c), nullptr);
}

}  // namespace
}  // namespace sluice::inspect
