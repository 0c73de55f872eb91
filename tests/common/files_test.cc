// The one atomic file write: the temporary file, permissions, failures and concurrent writers.
#include "sluice/common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using test_util::ReadFile;
using test_util::SortedEntries;
using ::testing::ElementsAre;
using ::testing::StartsWith;

using AtomicFileTest = sluice::test_util::TempDirTest;

TEST_F(AtomicFileTest, WritesTheTextAndLeavesNoTemporaryFile) {
  WriteFileAtomically(dir_ / "a.txt", "hello", "the greeting");
  EXPECT_EQ(ReadFile(dir_ / "a.txt"), "hello");
  WriteFileAtomically(dir_ / "a.txt", "again", "the greeting");
  EXPECT_EQ(ReadFile(dir_ / "a.txt"), "again");
  EXPECT_THAT(SortedEntries(dir_), ElementsAre("a.txt"));
}

TEST_F(AtomicFileTest, TheTemporaryFileIsBesideTheDestinationAndUniquePerCall) {
  AtomicFile a(dir_ / "a.txt");
  AtomicFile b(dir_ / "a.txt");
  EXPECT_EQ(a.temp_path().parent_path(), dir_);
  EXPECT_THAT(a.temp_path().filename().string(),
              StartsWith(fmt::format("a.txt.tmp.{}.", ::getpid())));
  EXPECT_NE(a.temp_path(), b.temp_path());
}

TEST_F(AtomicFileTest, UncommittedWriteLeavesTheOldFile) {
  WriteFileAtomically(dir_ / "a.txt", "old", "");
  {
    AtomicFile f(dir_ / "a.txt");
    f.Write("new");
  }
  EXPECT_EQ(ReadFile(dir_ / "a.txt"), "old");
  EXPECT_THAT(SortedEntries(dir_), ElementsAre("a.txt"));
}

TEST_F(AtomicFileTest, KeepsThePermissionsOfTheFileItReplaces) {
  const fs::path path = dir_ / "a.txt";
  WriteFileAtomically(path, "old", "");
  ::chmod(path.c_str(), 0600);
  WriteFileAtomically(path, "new", "");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AtomicFileTest, RemovesTemporaryFilesOfDeadProcessesOnly) {
  // pid 0x7ffffffe is beyond any real pid_max; this process's own are never touched.
  const std::string dead = "a.txt.tmp.2147483646.0";
  const std::string mine = fmt::format("a.txt.tmp.{}.999", ::getpid());
  for (const auto& name : {dead, mine}) WriteFileAtomically(dir_ / name, "x", "");
  WriteFileAtomically(dir_ / "a.txt", "new", "");
  EXPECT_THAT(SortedEntries(dir_), ElementsAre("a.txt", mine));
}

TEST_F(AtomicFileTest, FailuresNameTheDestinationAndTheStep) {
  const fs::path missing = dir_ / "missing" / "a.txt";
  try {
    WriteFileAtomically(missing, "x", "the report");
    FAIL() << "no error";
  } catch (const AtomicWriteError& e) {
    EXPECT_EQ(std::string(e.what()),
              missing.string() + ": cannot write the report: No such file or directory");
    EXPECT_EQ(e.step(), AtomicWriteStep::kCreate);
  }
  // A directory where the file should go: the rename fails after the write.
  fs::create_directories(dir_ / "d" / "child");
  try {
    WriteFileAtomically(dir_ / "d", "x", "");
    FAIL() << "no error";
  } catch (const AtomicWriteError& e) {
    EXPECT_THAT(std::string(e.what()), StartsWith((dir_ / "d").string() + ": cannot write: "));
    EXPECT_EQ(e.step(), AtomicWriteStep::kReplace);
  }
  EXPECT_THAT(SortedEntries(dir_), ElementsAre("d"));
}

TEST_F(AtomicFileTest, ConcurrentWritersNeverCollide) {
  const fs::path path = dir_ / "a.txt";
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      const std::string text(4096, static_cast<char>('a' + w));
      for (int i = 0; i < 50; ++i) {
        try {
          WriteFileAtomically(path, text, "");
        } catch (const Error&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  const std::string text = ReadFile(path);
  ASSERT_EQ(text.size(), 4096u);
  EXPECT_EQ(text, std::string(4096, text[0]));  // one writer's whole text
  EXPECT_THAT(SortedEntries(dir_), ElementsAre("a.txt"));
}

}  // namespace
}  // namespace sluice
