// Fault injection through the whole tool: ops that throw at a random element, source files that
// vanish or turn unreadable mid-run, a trace whose disk is full or whose directory is read-only,
// `sluice apply` killed between writing and renaming, and jobs killed by SIGKILL, SIGSEGV and
// SIGABRT while `sluice profile` traces them. (The hanging op is in stop_bound_test.cc.)
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/config/merge.h"
#include "sluice/pipeline/op.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "src/config/testing.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using sluice::test_util::ProcessOptions;
using sluice::test_util::ProcessResult;
using sluice::test_util::ReadFile;
using sluice::test_util::RunProcess;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Throws at the element whose id is args.at (a parallelizable map op, as a user's op would be).
class ThrowAtOp final : public pipeline::MapOp {
 public:
  explicit ThrowAtOp(pipeline::OpArgs& args) : at_(static_cast<uint64_t>(args.Int("at"))) {}
  pipeline::OpProperties properties() const override {
    return {pipeline::OpKind::kMap, true, true, true};
  }
  void Process(pipeline::Element in, std::vector<pipeline::Element>& out,
               const pipeline::OpContext&) override {
    if (in.id == at_) throw std::runtime_error(fmt::format("injected fault at element {}", at_));
    out.push_back(std::move(in));
  }

 private:
  uint64_t at_;
};
SLUICE_REGISTER_OP("fault_throw_at", ThrowAtOp);

class FaultTest : public sluice::test_util::TempDirTest {
 protected:
  void TearDown() override {
    std::error_code ec;  // a test makes dir_/ro read-only: give write back so it can be removed
    fs::permissions(dir_ / "ro", fs::perms::owner_all, ec);
    TempDirTest::TearDown();
  }
  fs::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
};

// ---------------------------------------------------------------------------------------------
// An op that throws

TEST_F(FaultTest, OpThrowingAtARandomElementFailsThePipelineCleanly) {
  // Every layout the runtime has: inline, parallel in order, parallel reordered, behind a batch
  // and a prefetch thread. The element that throws is drawn at random (seed printed on failure).
  const std::vector<std::string> layouts = {
      R"("parallelism": 1)",
      R"("parallelism": 3, "buffer_size": 4)",
      R"("parallelism": 3, "buffer_size": 2, "deterministic": false, "allow_reorder": true)",
  };
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  for (const std::string& layout : layouts) {
    for (bool batched : {false, true}) {
      const int64_t count = 200;
      const int64_t at = std::uniform_int_distribution<int64_t>(0, count - 1)(rng);
      SCOPED_TRACE(fmt::format("{} batched={} at={}", layout, batched, at));
      std::string text = fmt::format(
          R"({{"name": "faulty", "stages": [
              {{"name": "src", "op": "generate", "args": {{"count": {}, "bytes": 16}}}},
              {{"name": "boom", "op": "fault_throw_at", "args": {{"at": {}}}, {}}}{}]}})",
          count, at, layout,
          batched ? R"(, {"name": "batch", "op": "batch", "args": {"size": 8}},
                      {"name": "prefetch", "op": "prefetch", "buffer_size": 2})"
                  : "");
      auto pipe = pipeline::Pipeline::Create(config::Document::Parse(text, "faulty.json"));
      std::set<uint64_t> ids;
      pipeline::Element e;
      std::string error;
      try {
        while (pipe->Next(&e)) ids.insert(e.id);
      } catch (const Error& err) {
        error = err.what();
      }
      EXPECT_THAT(error, HasSubstr("stage 'boom' (fault_throw_at): injected fault at element " +
                                   std::to_string(at)));
      if (!batched) {
        EXPECT_EQ(ids.count(static_cast<uint64_t>(at)), 0u);
      }
      // The failure sticks: later calls report it again rather than deliver more.
      EXPECT_THROW(pipe->Next(&e), Error);
      pipe->Stop();
      EXPECT_EQ(pipe->RunningThreads(), 0);
      EXPECT_THAT(pipe->StuckStages(), IsEmpty());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Source files that disappear or become unreadable mid-run

class SourceFaultTest : public FaultTest {
 protected:
  // 50 files; the pipeline reads them inline (in the consumer's thread), so no file is read
  // before the consumer asks for it.
  std::unique_ptr<pipeline::Pipeline> StartOnFiles() {
    fs::create_directories(dir_ / "data");
    for (int i = 0; i < 50; ++i) Write(fmt::format("data/f{:03}.bin", i), std::string(100, 'x'));
    const fs::path config = Write("files.json", R"({"name": "files", "stages": [
        {"name": "files", "op": "list_files", "args": {"pattern": "data/*.bin"}},
        {"name": "read", "op": "read_file"}]})");
    return pipeline::Pipeline::Create(config::Document::Load(config));
  }
  // Pulls until an error; returns its message and how many elements came before it.
  std::string Drain(pipeline::Pipeline& pipe, int* delivered) {
    pipeline::Element e;
    try {
      while (pipe.Next(&e)) ++*delivered;
    } catch (const Error& err) {
      return err.what();
    }
    return "";
  }
};

TEST_F(SourceFaultTest, AFileThatDisappearsMidRunIsAClearErrorNamingIt) {
  auto pipe = StartOnFiles();
  pipeline::Element e;
  ASSERT_TRUE(pipe->Next(&e));
  fs::remove(dir_ / "data" / "f001.bin");
  int delivered = 1;
  const std::string error = Drain(*pipe, &delivered);
  EXPECT_EQ(delivered, 1);
  EXPECT_THAT(error, HasSubstr("stage 'read' (read_file)"));
  EXPECT_THAT(error, HasSubstr("f001.bin"));
  EXPECT_THAT(error, HasSubstr("No such file or directory"));
}

TEST_F(SourceFaultTest, AFileThatBecomesUnreadableMidRunIsAClearErrorNamingIt) {
  auto pipe = StartOnFiles();
  pipeline::Element e;
  ASSERT_TRUE(pipe->Next(&e));
  ASSERT_TRUE(pipe->Next(&e));
  // Unreadable for everyone, root included (permissions do not stop root): the name now holds
  // a directory, which opens but fails to read (EISDIR).
  const fs::path victim = dir_ / "data" / "f002.bin";
  fs::remove(victim);
  fs::create_directory(victim);
  int delivered = 2;
  const std::string error = Drain(*pipe, &delivered);
  EXPECT_EQ(delivered, 2);
  EXPECT_THAT(error, HasSubstr("stage 'read' (read_file)"));
  EXPECT_THAT(error, HasSubstr("f002.bin"));
  EXPECT_THAT(error, HasSubstr("Is a directory"));
}

// ---------------------------------------------------------------------------------------------
// The trace cannot be written: disk full, directory read-only. The job must not notice.

class TraceWriteFaultTest : public FaultTest {
 protected:
  // `sluice profile -- fault_job` for a job of a fixed number of steps.
  ProcessResult ProfileJob(const fs::path& out, const ProcessOptions& opt = {}) {
    return RunProcess({SLUICE_CLI, "profile", "--seconds", "60", "--interval-ms", "20", "--out",
                       out.string(), "--", SLUICE_FAULT_JOB, "--steps", "400"},
                      dir_, opt);
  }
};

TEST_F(TraceWriteFaultTest, DiskFullLeavesTheJobUnaffectedAndSaysSo) {
  // RLIMIT_FSIZE stands for a full disk: a write past 2 kB fails with EFBIG (SIGXFSZ ignored,
  // as it stays across exec). The trace is far larger; the job writes nothing else.
  ProcessOptions opt;
  opt.in_child = [] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{2048, 2048};
    ::setrlimit(RLIMIT_FSIZE, &limit);
  };
  const auto r = ProfileJob(dir_ / "out", opt);
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  // The job ran to its end and said so.
  EXPECT_THAT(r.out, HasSubstr("fault_job: 400 outputs"));
  EXPECT_THAT(r.err, HasSubstr("sluice: warning: tracer:"));
  EXPECT_THAT(r.err, HasSubstr("File too large"));
  EXPECT_THAT(r.err, HasSubstr("the job continues"));
  EXPECT_THAT(r.err, HasSubstr("could not write"));
  EXPECT_THAT(r.err, HasSubstr("exited with status 0"));
  // No half-written trace or temporary file is left behind.
  for (const auto& name : test_util::SortedEntries(dir_ / "out")) {
    EXPECT_THAT(name, Not(HasSubstr("trace.json"))) << name;
  }
}

TEST_F(TraceWriteFaultTest, ReadOnlyTraceDirectoryLeavesTheJobUnaffectedAndSaysSo) {
  fs::path out = dir_ / "ro";
  std::string how;
  if (::geteuid() != 0) {
    fs::create_directories(out);
    fs::permissions(out, fs::perms::owner_read | fs::perms::owner_exec);
    how = "chmod 0500";
  } else {
    // Root writes through permissions; sysfs refuses new files to everyone.
    out = "/sys/kernel";
    std::ofstream probe(out / "sluice_probe");
    if (probe) {
      probe.close();
      fs::remove(out / "sluice_probe");
      GTEST_SKIP() << "running as root and /sys/kernel accepts new files: no read-only directory";
    }
    how = "/sys/kernel as root";
  }
  SCOPED_TRACE(how);
  const auto r = ProfileJob(out);
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("fault_job: 400 outputs"));
  EXPECT_THAT(r.err, HasSubstr("sluice: warning: tracer:"));
  EXPECT_THAT(r.err, AnyOf(HasSubstr("Permission denied"), HasSubstr("Read-only file system")));
  EXPECT_THAT(r.err, HasSubstr("could not write"));
  EXPECT_FALSE(fs::exists(out / "trace.json"));
}

// ---------------------------------------------------------------------------------------------
// `sluice apply` interrupted

class ApplyFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    original_ = R"({
  "name": "apply_me",
  "stages": [
    {"name": "src", "op": "generate", "args": {"count": 10}},
    {"name": "work", "op": "burn", "args": {"cpu_us": 10}, "parallelism": 1},
    {"name": "batch", "op": "batch", "args": {"size": 2}}
  ]
}
)";
    target_ = Write("pipeline.json", original_);
    tuned_ = Write("tuned.json", R"({"name": "apply_me", "stages": [
      {"name": "src", "op": "generate", "args": {"count": 10}},
      {"name": "work", "op": "burn", "args": {"cpu_us": 10}, "parallelism": 4, "buffer_size": 8},
      {"name": "cache", "op": "cache"},
      {"name": "batch", "op": "batch", "args": {"size": 2}}]})");
    auto target = config::Document::Load(target_);
    config::ApplyTuned(config::Document::Load(tuned_), target);
    applied_ = target.Dump();
    ASSERT_NE(applied_, original_);
  }
  std::vector<std::string> Temporaries() {
    std::vector<std::string> found;
    for (const auto& name : test_util::SortedEntries(dir_)) {
      if (name.find(".tmp.") != std::string::npos) found.push_back(name);
    }
    return found;
  }
  std::string original_, applied_;
  fs::path target_, tuned_;
};

TEST_F(ApplyFaultTest, KilledBetweenWriteAndRenameLeavesTheOriginalIntact) {
  const pid_t child = ::fork();
  if (child == 0) {
    auto target = config::Document::Load(target_);
    config::ApplyTuned(config::Document::Load(tuned_), target);
    config::testing::SetSaveHookForTesting([](const fs::path&) { ::raise(SIGKILL); });
    target.Save(target_, fs::path(target_.string() + ".bak"));
    ::_exit(0);  // not reached: the hook kills the process
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(ReadFile(target_), original_);
  EXPECT_EQ(ReadFile(target_.string() + ".bak"), original_);
  // The new text was complete on disk, under a temporary name that says whose it was.
  const auto tmp = Temporaries();
  ASSERT_EQ(tmp.size(), 1u);
  EXPECT_EQ(tmp[0], fmt::format("pipeline.json.tmp.{}.0", child));
  EXPECT_EQ(ReadFile(dir_ / tmp[0]), applied_);
  // The next apply finishes the job and clears the dead process's temporary file.
  const auto r = RunProcess({SLUICE_CLI, "apply", tuned_.string(), "--to", target_.string()}, dir_);
  ASSERT_TRUE(r.exited_ok()) << r.err;
  EXPECT_EQ(ReadFile(target_), applied_);
  EXPECT_EQ(ReadFile(target_.string() + ".bak"), original_);
  EXPECT_THAT(Temporaries(), IsEmpty());
}

TEST_F(ApplyFaultTest, KilledAtRandomMomentsTheConfigIsAlwaysOldOrNew) {
  // Black box: SIGKILL `sluice apply` after 0 to 20 ms, 30 times; the file on disk must always
  // be the whole old text or the whole new one.
  std::mt19937 rng(std::random_device{}());
  int old_seen = 0, new_seen = 0;
  for (int i = 0; i < 30; ++i) {
    std::ofstream(target_, std::ios::binary | std::ios::trunc) << original_;
    ProcessOptions opt;
    opt.kill_after_seconds = std::uniform_real_distribution<double>(0, 0.02)(rng);
    RunProcess({SLUICE_CLI, "apply", tuned_.string(), "--to", target_.string()}, dir_, opt);
    const std::string now = ReadFile(target_);
    ASSERT_THAT(now, AnyOf(original_, applied_)) << "after a kill at " << opt.kill_after_seconds;
    (now == original_ ? old_seen : new_seen)++;
  }
  // One clean run at the end removes whatever temporary files the kills left.
  std::ofstream(target_, std::ios::binary | std::ios::trunc) << original_;
  const auto r = RunProcess({SLUICE_CLI, "apply", tuned_.string(), "--to", target_.string()}, dir_);
  ASSERT_TRUE(r.exited_ok()) << r.err;
  EXPECT_EQ(ReadFile(target_), applied_);
  EXPECT_THAT(Temporaries(), IsEmpty());
  RecordProperty("old", old_seen);
  RecordProperty("new", new_seen);
}

// ---------------------------------------------------------------------------------------------
// A job killed while `sluice profile` traces it

class JobDeathTest : public FaultTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(JobDeathTest, TraceIsReadableAndSaysHowTheJobDied) {
  const std::string signal = GetParam();
  const fs::path out = dir_ / "out";
  ProcessOptions opt;
  // Under ASan the job must die by the signal itself, not by the sanitizer's report of it.
  const char* asan = std::getenv("ASAN_OPTIONS");
  opt.env.push_back(
      {"ASAN_OPTIONS", std::string(asan ? asan : "") + ":handle_segv=0:handle_abort=0"});
  // The job dies 1.5 s in, once its tracer has flushed a trace (fault_job waits for the file).
  const auto r =
      RunProcess({SLUICE_CLI, "profile", "--seconds", "60", "--interval-ms", "50", "--out",
                  out.string(), "--", SLUICE_FAULT_JOB, "--die-after-s", "1.5", "--signal", signal},
                 dir_, opt);
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the job was killed by SIG" + signal));
  const trace::Trace t = trace::ReadTrace(out / "trace.json");
  EXPECT_TRUE(t.job.cut_short);
  EXPECT_THAT(t.job.end_reason, HasSubstr("job was killed by SIG" + signal));
  EXPECT_EQ(t.job.exit_signal, "SIG" + signal);
  EXPECT_FALSE(t.job.exit_code.has_value());
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_GT(t.pipelines[0].consumer.next_calls, 0);
  // The analysis says it too.
  const auto a = RunProcess({SLUICE_CLI, "analyze", (out / "trace.json").string()}, dir_);
  EXPECT_TRUE(a.exited_ok()) << a.err;
  EXPECT_THAT(a.out, HasSubstr("SIG" + signal));
  const auto j = RunProcess({SLUICE_CLI, "analyze", (out / "trace.json").string(), "--json"}, dir_);
  EXPECT_TRUE(j.exited_ok()) << j.err;
  EXPECT_THAT(j.out, HasSubstr("SIG" + signal));
}

INSTANTIATE_TEST_SUITE_P(Signals, JobDeathTest, ::testing::Values("KILL", "SEGV", "ABRT"),
                         [](const auto& info) { return std::string(info.param); });

TEST_F(FaultTest, AJobThatEndsNormallyRecordsItsExitStatus) {
  const fs::path out = dir_ / "out";
  const auto r = RunProcess({SLUICE_CLI, "profile", "--seconds", "60", "--interval-ms", "50",
                             "--out", out.string(), "--", SLUICE_FAULT_JOB, "--steps", "100"},
                            dir_);
  ASSERT_TRUE(r.exited_ok()) << r.err;
  const trace::Trace t = trace::ReadTrace(out / "trace.json");
  EXPECT_FALSE(t.job.cut_short);
  EXPECT_EQ(t.job.end_reason, "completed");
  EXPECT_EQ(t.job.exit_code, 0);
  EXPECT_EQ(t.job.exit_signal, "");
}

}  // namespace
}  // namespace sluice
