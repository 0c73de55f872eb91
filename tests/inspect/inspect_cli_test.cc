// Tests of `sluice inspect` beyond the corpus (inspect_test.cc): parse errors, the CLI, ops.json
// and the tuner's use of inspected properties.
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
using corpus::CorpusOptions;
using corpus::kCorpus;
using corpus::kIncludes;
using corpus::kSource;
using ::testing::HasSubstr;

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

// -I and --extra-arg take one value each: the files after them are inspected, not taken as
// include directories or compiler arguments.
TEST(InspectCliTest, FilesAfterIncludeAndExtraArgAreAllInspected) {
  const std::string two = (kCorpus / "two_ops.cc").string();
  const std::string coin = (kCorpus / "c_rand.cc").string();
  for (const std::string& flags :
       {kIncludes, fmt::format("--extra-arg=-I{} --extra-arg -I{}", (kSource / "include").string(),
                               (fs::path(SLUICE_BINARY_DIR) / "include").string())}) {
    std::string output;
    const int code = RunSluice(fmt::format("inspect --json {} {} {}", flags, two, coin), output);
    ASSERT_EQ(code, 0) << output;
    const auto j = nlohmann::json::parse(output);
    ASSERT_EQ(j["ops"].size(), 3u) << flags;
    EXPECT_EQ(j["ops"][0]["name"], "add_one");
    EXPECT_EQ(j["ops"][2]["name"], "coin");
  }
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
