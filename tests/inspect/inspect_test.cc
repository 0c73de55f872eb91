// Tests of `sluice inspect`: a corpus of op sources whose comments state the expected verdicts
// and mark the lines that must be cited as evidence; the runtime's built-in ops against their
// declared properties(); parse errors; ops.json; and the tuner's use of inspected properties.
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

namespace sluice::inspect {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kSource = SLUICE_SOURCE_DIR;
const fs::path kCorpus = kSource / "tests" / "data" / "inspect";
// The public headers, and the build's generated ones (sluice/pipeline/export.h).
const std::string kIncludes = fmt::format("-I {} -I {}", (kSource / "include").string(),
                                          (fs::path(SLUICE_BINARY_DIR) / "include").string());

InspectOptions CorpusOptions() {
  InspectOptions o;
  o.extra_args = {"-I" + (kSource / "include").string(),
                  "-I" + (fs::path(SLUICE_BINARY_DIR) / "include").string()};
  return o;
}

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

// ---------------------------------------------------------------------------------------------
// Errors

TEST(InspectErrorsTest, UnparseableFileGivesTheCompilersDiagnostics) {
  const std::string file = (kCorpus / "invalid" / "syntax_error.cc").string();
  try {
    Inspect({file}, CorpusOptions());
    FAIL() << "expected sluice::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("syntax_error.cc:12:"));
    EXPECT_THAT(e.what(), HasSubstr("error: expected ';'"));
    EXPECT_THAT(e.what(), HasSubstr("undeclared_name"));
  }
}

TEST(InspectErrorsTest, MissingFileIsNamed) {
  EXPECT_THROW(
      {
        try {
          Inspect({"/nonexistent/op.cc"});
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("/nonexistent/op.cc"));
          throw;
        }
      },
      Error);
}

// Runs the CLI; returns its exit status and fills `output` with stdout and stderr.
int RunSluice(const std::string& args, std::string& output) {
  const test_util::TempDir scratch("sluice_inspect_cli");
  const test_util::ProcessResult r = test_util::RunShell(
      fmt::format("{}/bin/sluice {} 2>&1", SLUICE_BINARY_DIR, args), scratch.path());
  output = r.out;
  return r.exit_code();
}

TEST(InspectCliTest, UnparseableInputExitsOneWithDiagnostics) {
  std::string output;
  const int code = RunSluice(
      fmt::format("inspect {} {}", kIncludes, (kCorpus / "invalid" / "syntax_error.cc").string()),
      output);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(output, HasSubstr("sluice: "));
  EXPECT_THAT(output, HasSubstr("error: expected ';'"));
}

TEST(InspectCliTest, JsonOutputIsTheOpsFile) {
  std::string output;
  const int code = RunSluice(
      fmt::format("inspect --json {} {}", kIncludes, (kCorpus / "two_ops.cc").string()), output);
  ASSERT_EQ(code, 0) << output;
  const auto j = nlohmann::json::parse(output);
  ASSERT_EQ(j["ops"].size(), 2u);
  EXPECT_EQ(j["ops"][0]["name"], "add_one");
  EXPECT_EQ(j["ops"][0]["stateless"], true);
  EXPECT_EQ(j["ops"][1]["name"], "count_calls");
  EXPECT_EQ(j["ops"][1]["stateless"], false);
  EXPECT_EQ(j["ops"][1]["evidence"][0]["property"], "stateless");
  EXPECT_EQ(j["ops"][1]["evidence"][0]["line"], 24);
  const OpsReport back = FromJson(j, "cli");
  EXPECT_EQ(back.ops[1].stateless_verdict, Verdict::kViolated);
}

// End to end: profile a synthetic pipeline whose burn stage declares itself deterministic
// (no "random" arg), then tune it with an ops.json that says burn draws from random_device
// unconditionally. Without --ops the tuner caches after 'spin'; with it, no cache at or below
// 'spin', a warning on stderr, and the same sentence in the plan's notes.
TEST(InspectCliTest, TuneWithOpsRefusesTheCacheAndWarns) {
  const test_util::TempDir tmp("sluice_inspect_tune");
  const fs::path& dir = tmp.path();
  const fs::path config = dir / "syn.json";
  std::ofstream(config) << R"({"name": "syn", "epochs": 50, "stages": [
    {"name": "gen", "op": "generate", "args": {"count": 400, "bytes": 1000}},
    {"name": "spin", "op": "burn", "args": {"cpu_us": 300}},
    {"name": "batch", "op": "batch", "args": {"size": 8}}]})";
  std::string output;
  ASSERT_EQ(RunSluice(fmt::format("profile {} --seconds 2 --out {}", config.string(),
                                  (dir / "prof").string()),
                      output),
            0)
      << output;
  const std::string trace = (dir / "prof" / "trace.json").string();
  ASSERT_EQ(RunSluice(fmt::format("tune {} --json", trace), output), 0) << output;
  const auto before = nlohmann::json::parse(output);
  // A cache after a stage at or below 'spin' (a cache after 'gen' stays legal).
  auto cached_below_spin = [](const nlohmann::json& plan) {
    bool found = false;
    for (const auto& c : plan["changes"]) {
      found = found || (c["knob"] == "cache" && c["stage"] != "gen");
    }
    return found;
  };
  ASSERT_TRUE(cached_below_spin(before)) << output;  // the cache the ops file must take away

  const nlohmann::json ops = {{"ops",
                               {{{"name", "burn"},
                                 {"deterministic", false},
                                 {"stateless", true},
                                 {"evidence",
                                  {{{"property", "deterministic"},
                                    {"file", "synthetic_ops.cc"},
                                    {"line", 27},
                                    {"what", "draws from std::random_device"}}}}}}}};
  std::ofstream(dir / "ops.json") << ops.dump();
  const test_util::ProcessResult tuned =
      test_util::RunProcess({std::string(SLUICE_BINARY_DIR) + "/bin/sluice", "tune", trace,
                             "--json", "--ops", (dir / "ops.json").string()},
                            dir);
  ASSERT_TRUE(tuned.exited_ok()) << tuned.err;
  const auto after = nlohmann::json::parse(tuned.out);
  EXPECT_FALSE(cached_below_spin(after)) << after.dump();
  EXPECT_THAT(tuned.err, HasSubstr("warning: stage 'spin' (op 'burn'): declared "
                                   "deterministic, inspected non-deterministic"));
  EXPECT_THAT(tuned.err, HasSubstr("synthetic_ops.cc:27"));
  EXPECT_THAT(after["notes"].dump(), HasSubstr("inspected non-deterministic"));
}

// ---------------------------------------------------------------------------------------------
// ops.json and the tuner

TEST(OpsJsonTest, RoundTripsVerdictsGuardsDeclarationsAndEvidence) {
  const OpsReport r =
      Inspect({(kCorpus / "conditional_random.cc").string(), (kCorpus / "mutex.cc").string()},
              CorpusOptions());
  const OpsReport back = FromJson(nlohmann::json::parse(ToJson(r).dump()), "ops.json");
  ASSERT_EQ(back.ops.size(), r.ops.size());
  for (size_t i = 0; i < r.ops.size(); ++i) {
    EXPECT_EQ(back.ops[i].name, r.ops[i].name);
    EXPECT_EQ(back.ops[i].deterministic_verdict, r.ops[i].deterministic_verdict);
    EXPECT_EQ(back.ops[i].stateless_verdict, r.ops[i].stateless_verdict);
    EXPECT_EQ(back.ops[i].deterministic_guards, r.ops[i].deterministic_guards);
    EXPECT_EQ(back.ops[i].declared_deterministic.members, r.ops[i].declared_deterministic.members);
    ASSERT_EQ(back.ops[i].evidence.size(), r.ops[i].evidence.size());
    EXPECT_EQ(back.ops[i].evidence[0].line, r.ops[i].evidence[0].line);
    EXPECT_EQ(Disagreements(back.ops[i]), Disagreements(r.ops[i]));
  }
}

TEST(OpsJsonTest, BadDocumentsAreNamed) {
  EXPECT_THROW(FromJson(nlohmann::json::parse(R"({"op": []})"), "x.json"), Error);
  try {
    FromJson(nlohmann::json::parse(R"({"ops": [{"name": "a"}]})"), "x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("x.json: ops[0]"));
  }
}

// The decode scenario of the tuner's tests: 2 cores, decode 10 ms of CPU per batch, a cache
// after decode pays (docs/tuner.md). An ops.json saying decode is non-deterministic must take
// that cache away, even though decode declares itself deterministic, and warn.
class InspectedTuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct S {
      const char* name;
      const char* op;
      bool parallelizable;
      bool deterministic;
      double wall;
      double bytes;
      int64_t elements;
      bool async;
    };
    const S stages[] = {{"src", "read_file", false, true, 0.0002, 50'000, 1000, false},
                        {"decode", "decode_jpeg", true, true, 0.010, 150'000, 1000, false},
                        {"crop", "random_crop", true, false, 0.001, 150'000, 1000, false},
                        {"batch", "batch", false, true, 0.0002, 4'800'000, 31, false},
                        {"prefetch", "prefetch", false, true, 0, 4'800'000, 31, true}};
    pipeline_.name = "train";
    pipeline_.epochs_completed = 1;
    for (const S& s : stages) {
      trace::StageTrace t;
      t.name = s.name;
      t.op = s.op;
      t.parallelizable = s.parallelizable;
      t.deterministic = s.deterministic;
      t.async = s.async;
      t.buffer_size = s.async ? 1 : 0;
      t.elements_out = s.elements;
      t.bytes_out = static_cast<int64_t>(s.bytes * static_cast<double>(s.elements));
      pipeline_.stages.push_back(t);
      walls_.push_back(s.wall);
      bytes_.push_back(s.bytes);
    }
  }

  // The analysis of the (possibly overridden) trace, as the analyzer would build it.
  analyzer::Analysis Analysis() const {
    analyzer::Analysis a;
    a.pipeline = "train";
    a.output_noun = "batch";
    a.window.seconds = 10;
    a.window.samples = 101;
    a.outputs = 1000;
    a.cores = 2;
    a.memory_bytes = 16'000'000'000;
    a.rss_bytes = 1'000'000'000;
    a.input_bound.verdict = analyzer::Verdict::kHighly;
    a.input_bound.wait_fraction = 0.5;
    for (size_t i = 0; i < pipeline_.stages.size(); ++i) {
      const trace::StageTrace& t = pipeline_.stages[i];
      analyzer::StageAnalysis s;
      s.name = t.name;
      s.op = t.op;
      s.parallelizable = t.parallelizable;
      s.async = t.async;
      s.buffer_size = t.buffer_size;
      s.wall_demand = walls_[i];
      s.cpu_demand = walls_[i];
      s.bytes_per_element = bytes_[i];
      s.visit_ratio = 1;
      s.elements = t.elements_out;
      a.stages.push_back(s);
    }
    const analyzer::Prediction now =
        analyzer::Predict(a, analyzer::CurrentKnobs(a), analyzer::CurrentResources(a));
    a.predicted_outputs_per_s = now.outputs_per_s;
    a.measured_outputs_per_s = now.outputs_per_s;
    a.limits = now.limits;
    return a;
  }

  tuner::Plan Tune(int64_t epochs = 5) const {
    tuner::TuneOptions options;
    options.epochs = epochs;
    options.memory_bytes = 1'000'000'000;
    return tuner::Tune(Analysis(), pipeline_, options);
  }

  static OpsReport Ops(bool deterministic, bool stateless, bool race = false) {
    nlohmann::json j = {{"ops",
                         {{{"name", "decode_jpeg"},
                           {"class", "DecodeJpegOp"},
                           {"file", "user_ops.cc"},
                           {"line", 12},
                           {"deterministic", deterministic},
                           {"stateless", stateless},
                           {"io", false},
                           {"evidence", nlohmann::json::array()}}}}};
    if (!deterministic) {
      j["ops"][0]["evidence"].push_back({{"property", "deterministic"},
                                         {"file", "user_ops.cc"},
                                         {"line", 31},
                                         {"what", "calls rand()"}});
    }
    if (!stateless) {
      j["ops"][0]["evidence"].push_back({{"property", "stateless"},
                                         {"file", "user_ops.cc"},
                                         {"line", 40},
                                         {"what", "increments member 'n_'"}});
    }
    if (race) {
      j["ops"][0]["race"] = true;
      j["ops"][0]["evidence"].push_back({{"property", "race"},
                                         {"file", "user_ops.cc"},
                                         {"line", 40},
                                         {"what", "increments member 'n_'"}});
    }
    return FromJson(j, "ops.json");
  }

  trace::PipelineTrace pipeline_;
  std::vector<double> walls_, bytes_;
};

TEST_F(InspectedTuneTest, CacheBelowAnOpInspectedNonDeterministicIsRefusedWithAWarning) {
  const tuner::Plan before = Tune();
  ASSERT_TRUE(before.knobs.cache_after.has_value());  // the cache this test takes away
  ASSERT_EQ(*before.knobs.cache_after, 1u);

  const std::vector<std::string> warnings = ApplyInspection(Ops(false, true), pipeline_);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("'decode'"));
  EXPECT_THAT(warnings[0], HasSubstr("declared deterministic, inspected non-deterministic"));
  EXPECT_THAT(warnings[0], HasSubstr("user_ops.cc:31"));
  EXPECT_EQ(pipeline_.stages[1].inspected, "non-deterministic");
  EXPECT_EQ(pipeline_.stages[0].inspected, "unknown");  // read_file is not in ops.json

  const tuner::Plan after = Tune();
  EXPECT_FALSE(after.knobs.cache_after.has_value() && *after.knobs.cache_after >= 1u);
}

TEST_F(InspectedTuneTest, OpInspectedStatefulGetsNoWorkers) {
  // One epoch: no cache pays, so decode's 10 ms need workers.
  const tuner::Plan before = Tune(1);
  // The workers this test takes away: decode's own, or those of 'crop' below it, which run it
  // fused (a parallelizable map directly above a parallel map).
  ASSERT_GT(std::max(before.knobs.stages[1].parallelism, before.knobs.stages[2].parallelism), 1);

  const std::vector<std::string> warnings = ApplyInspection(Ops(true, false), pipeline_);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("declared stateless, inspected stateful"));
  EXPECT_THAT(warnings[0], HasSubstr("user_ops.cc:40"));
  EXPECT_THAT(warnings[0], HasSubstr("not given workers"));
  EXPECT_FALSE(pipeline_.stages[1].parallelizable);
  EXPECT_EQ(pipeline_.stages[1].inspected, "deterministic");

  const tuner::Plan after = Tune(1);
  EXPECT_EQ(after.knobs.stages[1].parallelism, 1);
  // Not parallelizable, it is not fused either: the runtime runs it under the input lock of any
  // parallel stage below, one element at a time.
  EXPECT_FALSE(pipeline_.stages[1].parallelizable);
}

// A data race (a parallelizable op writing shared state without a lock or an atomic) takes the
// workers away and says why, with the place, whatever the op declares about its state.
TEST_F(InspectedTuneTest, OpWithADataRaceGetsNoWorkersAndThePlanSaysWhy) {
  const tuner::Plan before = Tune(1);
  ASSERT_GT(std::max(before.knobs.stages[1].parallelism, before.knobs.stages[2].parallelism), 1);

  const std::vector<std::string> warnings = ApplyInspection(Ops(true, false, true), pipeline_);
  ASSERT_FALSE(warnings.empty());
  EXPECT_THAT(warnings.back(), HasSubstr("data race"));
  EXPECT_THAT(warnings.back(), HasSubstr("user_ops.cc:40"));
  EXPECT_THAT(warnings.back(), HasSubstr("no workers"));
  EXPECT_FALSE(pipeline_.stages[1].parallelizable);
  EXPECT_EQ(Tune(1).knobs.stages[1].parallelism, 1);

  // Read back from ops.json, the finding is kept.
  const OpsReport back =
      FromJson(nlohmann::json::parse(ToJson(Ops(true, false, true)).dump()), "ops.json");
  EXPECT_TRUE(back.ops[0].race);
}

TEST_F(InspectedTuneTest, AgreeingInspectionChangesNothing) {
  EXPECT_TRUE(ApplyInspection(Ops(true, true), pipeline_).empty());
  EXPECT_TRUE(pipeline_.stages[1].parallelizable);
  EXPECT_TRUE(pipeline_.stages[1].deterministic);
}

}  // namespace
}  // namespace sluice::inspect
