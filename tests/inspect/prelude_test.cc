// The precompiled system headers the inspector's parses share (src/inspect/prelude.h): which
// headers and arguments go into them, when a file does without, and that the findings are the
// same with and without them.
#include "inspect/prelude.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inspect/parse.h"
#include "sluice/inspect/inspect.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"
#include "tests/inspect/inspect_test_util.h"

namespace sluice::inspect {
namespace {

namespace fs = std::filesystem;
using corpus::CorpusOptions;
using corpus::kCorpus;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(PreludeTest, SystemArgumentsDropTheProjectsMacrosAndIncludeDirectories) {
  EXPECT_THAT(
      internal::SystemArguments({"-DFOO=1", "-D", "BAR", "-D_GNU_SOURCE", "-UNDEBUG",
                                 "-I/p/include", "-I", "/p/src", "-iquote", "/p", "-isystem",
                                 "/usr/include/opencv4", "-std=c++20", "-O2"}),
      ElementsAre("-D_GNU_SOURCE", "-isystem", "/usr/include/opencv4", "-std=c++20", "-O2"));
}

TEST(PreludeTest, SystemIncludesFollowTheProjectsHeadersNotTheSystems) {
  const test_util::TempDir dir("sluice_prelude");
  fs::create_directories(dir / "include" / "proj");
  std::ofstream(dir / "a.cc") << "#include \"local.h\"\n#include <vector>\n"
                              << "#include <proj/api.h>\n#include <not_a_header_anywhere.h>\n";
  std::ofstream(dir / "local.h") << "#pragma once\n#include <map>\n#include <vector>\n";
  std::ofstream(dir / "include" / "proj" / "api.h") << "#include <string>\n#include \"local.h\"\n";
  const std::vector<std::string> args = {"-I" + (dir / "include").string(), "-std=c++20"};
  // <proj/api.h> is found under -I: the project's, followed; the rest are the system's, once
  // each.
  std::vector<std::string> found = internal::SystemIncludes({(dir / "a.cc").string()}, args);
  std::sort(found.begin(), found.end());
  EXPECT_THAT(found, ElementsAre("map", "string", "vector"));
}

TEST(PreludeTest, AFileDefiningAMacroBeforeItsIncludesDoesWithout) {
  EXPECT_TRUE(internal::DefinesBeforeIncludes("#define _GNU_SOURCE\n#include <string.h>\n"));
  EXPECT_TRUE(internal::DefinesBeforeIncludes("#include <a.h>\n#undef X\n  #  include <b.h>\n"));
  EXPECT_FALSE(internal::DefinesBeforeIncludes("#include <vector>\n#define N 3\nint x[N];\n"));

  const test_util::TempDir dir("sluice_prelude");
  const fs::path plain = dir / "plain.cc", defining = dir / "defining.cc";
  std::ofstream(plain) << "#include <vector>\nstd::vector<int> v;\n";
  std::ofstream(defining) << "#define _GNU_SOURCE\n#include <vector>\nstd::vector<int> v;\n";
  internal::Prelude prelude({plain.string(), defining.string()});
  const InspectOptions o;
  const std::vector<std::string> with =
      prelude.ArgumentsFor(plain.string(), internal::ArgumentsFor(plain.string(), o));
  ASSERT_THAT(with, SizeIs(2));
  EXPECT_EQ(with[0], "-include-pch");
  EXPECT_TRUE(fs::is_regular_file(with[1]));
  EXPECT_THAT(prelude.ArgumentsFor(defining.string(), internal::ArgumentsFor(defining.string(), o)),
              IsEmpty());
}

// With a cache, the header is kept for the next run and serves it unchanged while it holds
// every header the files include; a file that includes another one makes a header that holds
// both sets, in the same place.
TEST(PreludeTest, TheHeaderIsKeptForTheNextRunAndGrowsWhenAFileNeedsMore) {
  const test_util::TempDir dir("sluice_prelude_kept");
  const fs::path a = dir / "a.cc", b = dir / "b.cc";
  std::ofstream(a) << "#include <vector>\nstd::vector<int> v;\n";
  std::ofstream(b) << "#include <map>\nstd::map<int, int> m;\n";
  const internal::Cache cache(dir / "cache");
  const InspectOptions o;
  const auto pch_of = [&](const std::vector<std::string>& files, const fs::path& file) {
    internal::Prelude prelude(files, &cache);
    const std::vector<std::string> with =
        prelude.ArgumentsFor(file.string(), internal::ArgumentsFor(file.string(), o));
    EXPECT_THAT(with, SizeIs(2));
    return with.empty() ? fs::path() : fs::path(with.back());
  };
  const fs::path first = pch_of({a.string()}, a);
  ASSERT_EQ(first.parent_path(), dir / "cache");
  ASSERT_TRUE(fs::is_regular_file(first));  // outlives its prelude
  const auto built = fs::last_write_time(first);
  fs::last_write_time(first, built - std::chrono::hours(1));  // a rebuild would be seen
  EXPECT_EQ(pch_of({a.string()}, a), first);
  EXPECT_EQ(fs::last_write_time(first), built - std::chrono::hours(1));

  EXPECT_EQ(pch_of({b.string()}, b), first);  // <map> was not in it: built again, with both
  EXPECT_NE(fs::last_write_time(first), built - std::chrono::hours(1));
  const std::string header = test_util::ReadFile(fs::path(first).replace_extension(".h"));
  EXPECT_THAT(header, HasSubstr("<vector>"));
  EXPECT_THAT(header, HasSubstr("<map>"));
  const auto grown = fs::last_write_time(first);
  EXPECT_EQ(pch_of({a.string()}, a), first);
  EXPECT_EQ(fs::last_write_time(first), grown);
}

// Every finding, evidence line and unresolved call is the same whether the system headers come
// from the precompiled header or are parsed in each file; the corpus files chosen include the
// standard library's random, mutex, atomic and filesystem headers and the socket API.
TEST(PreludeTest, FindingsAreTheSameWithAndWithoutThePrecompiledHeader) {
  std::vector<std::string> files;
  for (const char* f : {"member_engine.cc", "locked_parallel.cc", "atomic_counter.cc",
                        "filesystem_io.cc", "socket_io.cc"}) {
    files.push_back((kCorpus / f).string());
  }
  InspectOptions o = CorpusOptions();
  {
    internal::Prelude prelude(files);
    ASSERT_THAT(prelude.ArgumentsFor(files[0], internal::ArgumentsFor(files[0], o)), SizeIs(2))
        << "the precompiled header did not build";
  }
  const std::string with = ToJson(Inspect(files, o)).dump(1);
  o.precompile = false;
  const std::string without = ToJson(Inspect(files, o)).dump(1);
  EXPECT_EQ(with, without);
}

}  // namespace
}  // namespace sluice::inspect
