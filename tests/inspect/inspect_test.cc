// Tests of `sluice inspect`: a corpus of op sources whose comments state the expected verdicts
// and mark the lines that must be cited as evidence; the runtime's built-in ops against their
// declared properties() (errors, the CLI, ops.json and the tuner: inspect_cli_test.cc).
#include "sluice/inspect/inspect.h"
#include "tests/common/files.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"
#include "sluice/tuner/tuner.h"
#include "tests/common/harness.h"
#include "tests/inspect/inspect_test_util.h"

namespace sluice::inspect {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using corpus::CorpusOptions;
using corpus::kCorpus;
using corpus::kIncludes;
using corpus::kSource;

// ---------------------------------------------------------------------------------------------
// The corpus: "// expect NAME: deterministic=V stateless=V io=yes|no [race=yes|no]" states an
// op's verdicts (no race when unsaid); "// <- PROPERTY..." marks a line that must be cited for
// PROPERTY. Cited lines and marked lines must be the same set, so a spurious finding fails as
// surely as a missed one.

struct Expectation {
  Verdict deterministic = Verdict::kHolds;
  Verdict stateless = Verdict::kHolds;
  bool io = false;
  bool race = false;
};

Verdict ParseVerdict(const std::string& s) {
  if (s == "holds") return Verdict::kHolds;
  if (s == "violated") return Verdict::kViolated;
  if (s == "conditional") return Verdict::kConditional;
  ADD_FAILURE() << "bad verdict " << s;
  return Verdict::kHolds;
}

const char* Name(Verdict v) {
  return v == Verdict::kHolds ? "holds" : v == Verdict::kViolated ? "violated" : "conditional";
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kCorpus)) {
    if (entry.path().extension() == ".cc") files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A cited or marked line: (file name, property, line).
using Mark = std::tuple<std::string, std::string, int>;

// Reads the expectations and markers of `files` (expectations come from every file; ops are
// registered in the first).
void ReadComments(const std::vector<fs::path>& files, std::map<std::string, Expectation>& expected,
                  std::set<Mark>& marked) {
  const std::regex expect_re(
      R"(// expect ([a-z_]+): deterministic=(\w+) stateless=(\w+) io=(yes|no)(?: race=(yes|no))?)");
  const std::regex marker_re(
      R"(// <- ((?:deterministic|stateless|io|race)(?: (?:deterministic|stateless|io|race))*))");
  for (const fs::path& file : files) {
    std::istringstream lines(test_util::ReadFile(file));
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      std::smatch m;
      if (std::regex_search(line, m, expect_re)) {
        expected[m[1]] = {ParseVerdict(m[2]), ParseVerdict(m[3]), m[4] == "yes", m[5] == "yes"};
      }
      if (std::regex_search(line, m, marker_re)) {
        std::istringstream properties(m[1].str());
        for (std::string p; properties >> p;) marked.insert({file.filename().string(), p, n});
      }
    }
  }
}

// Checks `report` against the comments of `files`: every op's verdicts, and the cited lines.
void ExpectMatchesComments(const OpsReport& report, const std::vector<fs::path>& files) {
  std::map<std::string, Expectation> expected;
  std::set<Mark> marked;
  ReadComments(files, expected, marked);
  ASSERT_FALSE(expected.empty()) << files[0] << " states no expectation";
  std::set<std::string> found;
  std::set<Mark> cited;
  for (const OpReport& op : report.ops) {
    found.insert(op.name);
    auto it = expected.find(op.name);
    if (it == expected.end()) {
      ADD_FAILURE() << "unexpected op " << op.name;
      continue;
    }
    EXPECT_EQ(Name(op.deterministic_verdict), std::string(Name(it->second.deterministic)))
        << op.name << ": deterministic";
    EXPECT_EQ(Name(op.stateless_verdict), std::string(Name(it->second.stateless)))
        << op.name << ": stateless";
    EXPECT_EQ(op.io, it->second.io) << op.name << ": io";
    EXPECT_EQ(op.race, it->second.race) << op.name << ": data race";
    EXPECT_EQ(op.deterministic, it->second.deterministic == Verdict::kHolds);
    EXPECT_EQ(op.stateless, it->second.stateless == Verdict::kHolds);
    for (const Evidence& e : op.evidence) {
      EXPECT_FALSE(e.what.empty());
      cited.insert({fs::path(e.file).filename().string(), PropertyName(e.property), e.line});
    }
  }
  std::set<std::string> names;
  for (const auto& [name, e] : expected) names.insert(name);
  EXPECT_EQ(found, names);
  EXPECT_EQ(cited, marked) << "evidence (file, property, line) differs from the // <- markers";
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, VerdictsAndEvidenceLinesMatchTheFileComments) {
  const fs::path file = kCorpus / GetParam();
  ExpectMatchesComments(Inspect({file.string()}, CorpusOptions()), {file});
}

INSTANTIATE_TEST_SUITE_P(Files, CorpusTest, ::testing::ValuesIn(CorpusFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return fs::path(info.param).stem().string();
                         });

TEST(CorpusSizeTest, HasAtLeastTwentyOpSources) { EXPECT_GE(CorpusFiles().size(), 20u); }

// A compilation database for the cross-file corpus (tests/data/inspect/cross_file): the ops'
// file and the two files defining the helpers they call, written into `dir`.
void WriteCrossFileDatabase(const fs::path& dir) {
  const fs::path src = kCorpus / "cross_file";
  nlohmann::json db = nlohmann::json::array();
  for (const char* f : {"uses_helpers.cc", "noise.cc", "counter.cc"}) {
    db.push_back(
        {{"directory", src.string()},
         {"file", f},
         {"command", fmt::format("c++ -std=c++20 {} -I. -c {} -o {}.o", kIncludes, f, f)}});
  }
  std::ofstream(dir / "compile_commands.json") << db.dump();
}

// Helpers defined in other translation units are followed through the compilation database:
// one draws from rand(), one writes a global (a race in a parallelizable op), one is clean. One
// test for the cache too, so that the corpus is parsed in one process.
TEST(CrossFileTest, HelpersInOtherFilesAreFollowedThroughTheDatabaseAndCached) {
  const test_util::TempDir tmp("sluice_inspect_cross");
  WriteCrossFileDatabase(tmp.path());
  InspectOptions o;
  o.build_dir = tmp.path();
  const fs::path src = kCorpus / "cross_file";
  const OpsReport r = Inspect({(src / "uses_helpers.cc").string()}, o);
  ExpectMatchesComments(r, {src / "uses_helpers.cc", src / "noise.cc", src / "counter.cc"});
  for (const OpReport& op : r.ops) {
    EXPECT_THAT(op.unresolved_calls, ::testing::IsEmpty()) << op.name;
  }

  // The helpers' summaries and the inspection itself are cached under the build directory by
  // file and modification time: a second run parses nothing (an entry edited by hand shows)...
  const fs::path cache = tmp.path() / ".sluice-inspect-cache";
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(cache)) {
    const std::string text = test_util::ReadFile(entry.path());
    if (text.find("calls rand()") == std::string::npos) continue;
    std::ofstream(entry.path()) << std::regex_replace(text, std::regex(R"(calls rand\(\))"),
                                                      "read from the cache");
    entries.push_back(entry.path());
  }
  ASSERT_EQ(entries.size(), 2u) << "expected the entries of noise.cc and uses_helpers.cc";
  auto noise_finding = [&] {
    for (const OpReport& op : Inspect({(src / "uses_helpers.cc").string()}, o).ops) {
      if (op.name == "noisy_helper" && !op.evidence.empty()) return op.evidence[0].what;
    }
    return std::string("none");
  };
  EXPECT_EQ(noise_finding(), "read from the cache");
  // ... and a corrupt entry is ignored: the files are parsed again and the entries rewritten.
  for (const fs::path& e : entries) std::ofstream(e) << "{\"version\": 1, \"key\": ";
  EXPECT_EQ(noise_finding(), "calls rand()");
  for (const fs::path& e : entries) {
    EXPECT_NO_THROW(nlohmann::json::parse(test_util::ReadFile(e))) << e;
  }
}

// A cached inspection reports its places as the file is named now: a file inspected by its
// absolute path and then by a relative one is reported relative, as a fresh parse would.
TEST(CrossFileTest, CachedPlacesAreSpelledAsTheFileIsNamed) {
  const test_util::TempDir tmp("sluice_inspect_spelling");
  WriteCrossFileDatabase(tmp.path());
  InspectOptions o;
  o.build_dir = tmp.path();
  const fs::path absolute = kCorpus / "cross_file" / "uses_helpers.cc";
  const std::string relative = fs::relative(absolute).string();
  ASSERT_TRUE(fs::path(relative).is_relative());
  const OpsReport first = Inspect({absolute.string()}, o);
  ASSERT_FALSE(first.ops.empty());
  EXPECT_EQ(first.ops[0].file, absolute.string());
  const OpsReport second = Inspect({relative}, o);
  ASSERT_FALSE(second.ops.empty());
  EXPECT_EQ(second.ops[0].file, relative);
}

// The names a registration gives and the class it names are reported apart.
TEST(InspectTest, ReportsRegisteredNameClassAndPlace) {
  const OpsReport r = Inspect({(kCorpus / "renamed.cc").string()}, CorpusOptions());
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].name, "normalize_text");
  EXPECT_EQ(r.ops[0].class_name, "LowercaseImpl");
  EXPECT_EQ(r.ops[0].line, 9);
  EXPECT_TRUE(Disagreements(r.ops[0]).empty());
}

// A declaration that contradicts the source is reported with the evidence's place; one whose
// value reads the member guarding the findings (`!jitter_`) agrees.
TEST(InspectTest, DisagreementsNameThePropertyAndTheEvidence) {
  const OpsReport r =
      Inspect({(kCorpus / "false_claim.cc").string(), (kCorpus / "conditional_random.cc").string()},
              CorpusOptions());
  ASSERT_EQ(r.ops.size(), 2u);
  const std::vector<std::string> d = Disagreements(r.ops[0]);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_THAT(d[0], HasSubstr("declares deterministic = true"));
  EXPECT_THAT(d[0], HasSubstr("false_claim.cc:15"));
  EXPECT_THAT(d[1], HasSubstr("false_claim.cc:16"));
  EXPECT_THAT(d[1], HasSubstr("declares stateless = true"));
  EXPECT_THAT(d[1], HasSubstr("'last_'"));
  EXPECT_THAT(d[2], HasSubstr("declares parallelizable = true"));
  EXPECT_THAT(d[2], HasSubstr("data race"));
  EXPECT_THAT(d[2], HasSubstr("false_claim.cc:16"));
  EXPECT_EQ(r.ops[1].declared_deterministic.text, "!jitter_");
  EXPECT_EQ(r.ops[1].deterministic_guards, std::vector<std::string>{"jitter_"});
  EXPECT_TRUE(Disagreements(r.ops[1]).empty());
}

// ---------------------------------------------------------------------------------------------
// The runtime's built-in ops. Their declarations are read from each properties() return
// statement (positional or designated initializers); the registry, linked in, says which ops
// exist, so an op the inspector failed to find fails the test.

class BuiltinOpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(kSource / "src" / "pipeline" / "ops")) {
      if (entry.path().extension() == ".cc") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    InspectOptions o;
    o.build_dir = SLUICE_BINARY_DIR;  // its compile_commands.json has the ops' own flags
    report_ = new OpsReport(Inspect(files, o));
  }
  static void TearDownTestSuite() {
    delete report_;
    report_ = nullptr;
  }
  static const OpReport& Op(const std::string& name) {
    for (const OpReport& op : report_->ops) {
      if (op.name == name) return op;
    }
    ADD_FAILURE() << "no op " << name;
    static const OpReport kNone;
    return kNone;
  }
  static void EveryRegisteredOpIsFound();
  static void InspectionAgreesWithEveryDeclaration();
  static void FindsTheKnownSourcesOfEachProperty();
  static void ConditionalFindingsFollowTheDeclarationForTheArgsGiven();
  static OpsReport* report_;
};
OpsReport* BuiltinOpsTest::report_ = nullptr;

// One test for the four checks below: ctest runs each test in a process of its own, and one
// inspection of every built-in op's source takes about 30 s on 2 cores.
TEST_F(BuiltinOpsTest, EveryOpIsFoundAgreesWithItsDeclarationAndHasItsKnownFindings) {
  {
    SCOPED_TRACE("every registered op is found");
    EveryRegisteredOpIsFound();
  }
  {
    SCOPED_TRACE("the inspection agrees with every declaration");
    InspectionAgreesWithEveryDeclaration();
  }
  {
    SCOPED_TRACE("the known sources of each property");
    FindsTheKnownSourcesOfEachProperty();
  }
  {
    SCOPED_TRACE("conditional findings follow the declaration for the args given");
    ConditionalFindingsFollowTheDeclarationForTheArgsGiven();
  }
}

void BuiltinOpsTest::EveryRegisteredOpIsFound() {
  ASSERT_TRUE(fs::exists(fs::path(SLUICE_BINARY_DIR) / "compile_commands.json"));
  std::vector<std::string> inspected;
  for (const OpReport& op : report_->ops) inspected.push_back(op.name);
  std::sort(inspected.begin(), inspected.end());
  std::vector<std::string> registered = pipeline::OpRegistry::Global().Names();
  std::sort(registered.begin(), registered.end());
  EXPECT_EQ(inspected, registered);
}

void BuiltinOpsTest::InspectionAgreesWithEveryDeclaration() {
  for (const OpReport& op : report_->ops) {
    EXPECT_TRUE(op.declared_deterministic.found) << op.name;
    EXPECT_TRUE(op.declared_stateless.found) << op.name;
    EXPECT_THAT(Disagreements(op), ::testing::IsEmpty()) << op.name;
  }
}

void BuiltinOpsTest::FindsTheKnownSourcesOfEachProperty() {
  EXPECT_EQ(Op("burn").deterministic_verdict, Verdict::kConditional);
  EXPECT_EQ(Op("burn").deterministic_guards, (std::vector<std::string>{"random_", "scheduled_"}));
  // Its atomic sink is write-only; only a schedule (its start time) makes it stateful.
  EXPECT_EQ(Op("burn").stateless_verdict, Verdict::kConditional);
  EXPECT_EQ(Op("list_files").deterministic_guards, std::vector<std::string>{"shuffle_"});
  EXPECT_EQ(Op("shuffle").deterministic_verdict, Verdict::kViolated);
  EXPECT_EQ(Op("random_flip").deterministic_verdict, Verdict::kViolated);
  EXPECT_EQ(Op("filter").deterministic_verdict, Verdict::kHolds);  // seeded from the element
  EXPECT_EQ(Op("read_throttled").deterministic_verdict, Verdict::kHolds);  // clock for timing
  EXPECT_EQ(Op("decode_jpeg").stateless_verdict, Verdict::kHolds);         // thread_local scratch
  EXPECT_EQ(Op("batch").stateless_verdict, Verdict::kViolated);
  EXPECT_TRUE(Op("read_file").io);
  EXPECT_TRUE(Op("cache").io);
  EXPECT_FALSE(Op("resize").io);
}

// burn's declaration depends on its args: created through the registry both ways, its traced
// declaration is what ApplyInspection keeps, without a warning.
void BuiltinOpsTest::ConditionalFindingsFollowTheDeclarationForTheArgsGiven() {
  for (const bool random : {false, true}) {
    const nlohmann::ordered_json args = {{"cpu_us", 0}, {"random", random}};
    pipeline::OpArgs op_args(args, "test.json", "spin", "burn", ".");
    const auto op = pipeline::OpRegistry::Global().Create("burn", op_args);
    trace::PipelineTrace p;
    trace::StageTrace s;
    s.name = "spin";
    s.op = "burn";
    s.parallelizable = op->properties().parallelizable;
    s.deterministic = op->properties().deterministic;
    s.stateless = op->properties().stateless;
    p.stages.push_back(s);
    EXPECT_TRUE(ApplyInspection(*report_, p).empty());
    EXPECT_EQ(p.stages[0].inspected, random ? "non-deterministic" : "deterministic");
    EXPECT_EQ(p.stages[0].deterministic, !random);
    EXPECT_TRUE(p.stages[0].parallelizable);
  }
}

// The user op of the example training job declares itself clean, and is.
TEST(InspectTest, ExampleUserOpAgreesWithItsDeclaration) {
  InspectOptions o;
  o.build_dir = SLUICE_BINARY_DIR;
  o.extra_args = CorpusOptions().extra_args;
  const OpsReport r = Inspect({(kSource / "examples" / "train_job.cc").string()}, o);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].name, "grayscale");
  EXPECT_TRUE(r.ops[0].deterministic);
  EXPECT_TRUE(r.ops[0].stateless);
  EXPECT_FALSE(r.ops[0].io);
  EXPECT_TRUE(Disagreements(r.ops[0]).empty());
}

// `sluice tune --inspect BUILD_DIR` inspects the database's sources that register ops.
TEST(InspectTest, SourcesRegisteringOpsComeFromTheCompilationDatabase) {
  const test_util::TempDir tmp("sluice_inspect_db");
  const fs::path& dir = tmp.path();
  const nlohmann::json db = {
      {{"directory", kCorpus.string()}, {"file", "two_ops.cc"}, {"command", "c++ -c two_ops.cc"}},
      {{"directory", kSource.string()},
       {"file", "src/inspect/ops_json.cc"},
       {"command", "c++ -c src/inspect/ops_json.cc"}},
      {{"directory", kCorpus.string()},
       {"file", (kCorpus / "mutex.cc").string()},
       {"command", "c++ -c mutex.cc"}}};
  std::ofstream(dir / "compile_commands.json") << db.dump();
  EXPECT_EQ(SourcesRegisteringOps(dir),
            (std::vector<std::string>{(kCorpus / "mutex.cc").string(),
                                      (kCorpus / "two_ops.cc").string()}));
  fs::remove_all(dir);  // no database: an error
  EXPECT_THROW(SourcesRegisteringOps(dir), Error);
}

}  // namespace
}  // namespace sluice::inspect
