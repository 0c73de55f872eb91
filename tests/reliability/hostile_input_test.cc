// Hostile input through every output: stage names, a pipeline name and a config path holding
// quotes, backslashes, newlines, control characters, `<script>`, non-ASCII text and a 10 kB name
// go through `sluice run --json`, `sluice profile` (trace JSON, Chrome trace, HTML report),
// `sluice report`, `sluice analyze --json`, `sluice tune --json` and `sluice apply`: every JSON
// output parses and holds each string exactly, and the HTML holds markup only escaped. A trace
// claiming absurd figures never crashes the tools.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/config/document.h"
#include "sluice/trace/io.h"
#include "tests/common/files.h"
#include "tests/common/harness.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using sluice::test_util::ProcessResult;
using sluice::test_util::ReadFile;
using sluice::test_util::RunProcess;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::string LongName() {
  std::string s;
  while (s.size() < 10'240) s += "long<\"name\">\\é/";
  return s;
}

const std::vector<std::string>& HostileNames() {
  static const std::vector<std::string> names = {
      "src \"double\" 'single' \\back\\slash",
      "line1\nline2\ttab\rcr\x01\x1f"
      "ctl",
      "<script>alert('x')</script>&amp;</title>",
      "ünïcødé ✓ 日本語 🚀 \u202Eevil",
      LongName(),
  };
  return names;
}

const char* const kPipelineName = "pipe \"<b>bold</b>\"\n✓";

// Every string anywhere in `j` (keys and values).
void CollectStrings(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_string()) out.push_back(j.get<std::string>());
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      out.push_back(k);
      CollectStrings(v, out);
    }
  }
  if (j.is_array()) {
    for (const auto& v : j) CollectStrings(v, out);
  }
}

bool HoldsString(const nlohmann::json& j, const std::string& wanted) {
  std::vector<std::string> all;
  CollectStrings(j, all);
  for (const auto& s : all) {
    if (s.find(wanted) != std::string::npos) return true;
  }
  return false;
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    // The config's own path is hostile too.
    dir_ = root_ / "dir \"q\" 'q' <script>x</script> é\nnl";
    fs::create_directories(dir_);
    const auto& n = HostileNames();
    Json config = {
        {"name", kPipelineName},
        {"epochs", 1},
        {"stages",
         {{{"name", n[0]}, {"op", "generate"}, {"args", {{"count", 3000}, {"bytes", 64}}}},
          {{"name", n[1]},
           {"op", "burn"},
           {"args", {{"cpu_us", 200}}},
           {"parallelism", 1},
           {"buffer_size", 2}},
          {{"name", n[2]}, {"op", "sleep"}, {"args", {{"us", 50}}}},
          {{"name", n[3]}, {"op", "batch"}, {"args", {{"size", 4}}}},
          {{"name", n[4]}, {"op", "prefetch"}, {"buffer_size", 1}}}}};
    config_ = dir_ / "pipe \"<script>\" é\n.json";
    std::ofstream(config_, std::ios::binary) << config.dump(2);
  }

  ProcessResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), SLUICE_CLI);
    return RunProcess(args, root_);
  }
  // Parses `text` as JSON, failing the test (not crashing) when it is not.
  nlohmann::json ParseOrFail(const std::string& text, const std::string& what) {
    try {
      return nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << " is not JSON: " << e.what();
      return nlohmann::json();
    }
  }
  void ExpectStageNames(const nlohmann::json& stages, const std::string& what) {
    ASSERT_TRUE(stages.is_array()) << what;
    ASSERT_EQ(stages.size(), HostileNames().size()) << what;
    for (size_t i = 0; i < stages.size(); ++i) {
      EXPECT_EQ(stages[i]["name"].get<std::string>(), HostileNames()[i]) << what << " stage " << i;
    }
  }

  test_util::TempDir tmp_{"sluice_hostile"};
  fs::path root_, dir_, config_;
};

TEST_F(HostileInputTest, EveryOutputHoldsTheNamesExactly) {
  // sluice run: text and JSON.
  const auto text = Cli({"run", config_.string()});
  ASSERT_TRUE(text.exited_ok()) << text.err;
  const auto run = Cli({"run", config_.string(), "--json"});
  ASSERT_TRUE(run.exited_ok()) << run.err;
  const auto run_json = ParseOrFail(run.out, "run --json");
  ExpectStageNames(run_json["stages"], "run --json");

  // sluice profile: the trace, the Chrome trace, the HTML report when there is one.
  const fs::path out = root_ / "out";
  const auto profile = Cli({"profile", config_.string(), "--seconds", "1", "--interval-ms", "50",
                            "--chrome", "--out", out.string()});
  ASSERT_TRUE(profile.exited_ok()) << profile.err;
  const trace::Trace t = trace::ReadTrace(out / "trace.json");
  ASSERT_EQ(t.pipelines.size(), 1u);
  EXPECT_EQ(t.pipelines[0].name, kPipelineName);
  EXPECT_EQ(t.pipelines[0].config_path, config_.string());
  ASSERT_EQ(t.pipelines[0].stages.size(), HostileNames().size());
  for (size_t i = 0; i < HostileNames().size(); ++i) {
    EXPECT_EQ(t.pipelines[0].stages[i].name, HostileNames()[i]);
  }
  // The file is sluice-trace/2, JSON Lines: every line is JSON, and the last state and every
  // samples line hold the names exactly.
  std::istringstream lines(ReadFile(out / "trace.json"));
  nlohmann::json state;
  for (std::string line; std::getline(lines, line);) {
    const auto j = ParseOrFail(line, "a line of trace.json");
    if (j.value("chunk", "") == "state") state = j;
    if (j.value("chunk", "") == "samples") {
      ExpectStageNames(j["pipelines"][0]["stages"], "trace.json samples");
    }
  }
  ASSERT_TRUE(state.is_object()) << "trace.json has no state line";
  ExpectStageNames(state["pipelines"][0]["stages"], "trace.json");
  const auto chrome = ParseOrFail(ReadFile(out / "trace.chrome.json"), "trace.chrome.json");
  ASSERT_TRUE(chrome.contains("traceEvents"));
  EXPECT_TRUE(HoldsString(chrome, kPipelineName)) << "chrome trace: pipeline name";
  // Worker threads of the async stages are named after their stage.
  EXPECT_TRUE(HoldsString(chrome, HostileNames()[1])) << "chrome trace: stage 1";
  EXPECT_TRUE(HoldsString(chrome, HostileNames()[4])) << "chrome trace: stage 4";
  // The HTML report, as profile writes it and as `sluice report` writes it to a hostile path.
  const fs::path report = root_ / "report \"<script>\" é.html";
  const auto report_run = Cli({"report", (out / "trace.json").string(), "-o", report.string()});
  ASSERT_TRUE(report_run.exited_ok()) << report_run.err;
  for (const fs::path& path : {out / "report.html", report}) {
    SCOPED_TRACE(path.string());
    ASSERT_TRUE(fs::exists(path));
    const std::string html = ReadFile(path);
    EXPECT_THAT(html, Not(HasSubstr("<script>alert('x')</script>")));
    EXPECT_THAT(html, Not(HasSubstr("&amp;</title>")));
    EXPECT_THAT(html, Not(HasSubstr("<b>bold</b>")));
    EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert("));
  }

  // sluice analyze: text and JSON.
  const auto analyze_text = Cli({"analyze", (out / "trace.json").string()});
  EXPECT_TRUE(analyze_text.exited_ok()) << analyze_text.err;
  const auto analyze = Cli({"analyze", (out / "trace.json").string(), "--json"});
  ASSERT_TRUE(analyze.exited_ok()) << analyze.err;
  const auto analysis = ParseOrFail(analyze.out, "analyze --json");
  for (const auto& name : HostileNames()) {
    EXPECT_TRUE(HoldsString(analysis["stages"], name)) << "analyze --json: " << name.substr(0, 40);
  }

  // sluice tune: text and JSON, and the tuned config written and applied to the hostile path.
  const auto tune_text = Cli({"tune", (out / "trace.json").string()});
  EXPECT_TRUE(tune_text.exited_ok()) << tune_text.err;
  const fs::path tuned = root_ / "tuned \"<x>\".json";
  const auto tune = Cli({"tune", (out / "trace.json").string(), "--json", "-o", tuned.string()});
  ASSERT_TRUE(tune.exited_ok()) << tune.err;
  const auto plan = ParseOrFail(tune.out, "tune --json");
  const auto& tuned_stages = plan["config"]["stages"];
  for (const auto& name : HostileNames()) {
    EXPECT_TRUE(HoldsString(tuned_stages, name)) << "tune --json: " << name.substr(0, 40);
  }
  EXPECT_EQ(plan["config"]["name"].get<std::string>(), kPipelineName);
  const auto apply = Cli({"apply", tuned.string(), "--to", config_.string()});
  ASSERT_TRUE(apply.exited_ok()) << apply.err;
  const auto applied = config::Document::Load(config_);
  ASSERT_GE(applied.stages().size(), HostileNames().size());
  for (const auto& name : HostileNames()) EXPECT_NO_THROW(applied.Stage(name));
}

TEST_F(HostileInputTest, AnOutputFolderThatCannotBeMadeIsAUserErrorNamingThePath) {
  // /proc refuses new folders: a filesystem failure on a path the user gave.
  const auto r = Cli({"profile", config_.string(), "--seconds", "1", "--out", "/proc/sluice_x"});
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/proc/sluice_x"));
  EXPECT_THAT(r.err, ::testing::StartsWith("sluice: /proc/sluice_x: "));
  EXPECT_THAT(r.err, Not(HasSubstr("internal error")));
}

TEST_F(HostileInputTest, ATraceClaimingAbsurdFiguresNeverCrashesTheTools) {
  const fs::path out = root_ / "out";
  const auto profile = Cli({"profile", config_.string(), "--seconds", "1", "--interval-ms", "50",
                            "--out", out.string()});
  ASSERT_TRUE(profile.exited_ok()) << profile.err;
  // The tracer writes sluice-trace/2 (JSON Lines); the edits below are made to its /1 form.
  const nlohmann::json good =
      nlohmann::json::parse(trace::ToJson(trace::ReadTrace(out / "trace.json")));
  // Each edit claims something absurd but within what the format's types allow.
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> edits = {
      {"counts near INT64_MAX",
       [](nlohmann::json& j) {
         for (auto& s : j["pipelines"][0]["stages"]) {
           s["elements_out"] = INT64_MAX;
           s["elements_in"] = INT64_MAX;
           s["bytes_out"] = INT64_MAX;
           s["queue_max"] = INT64_MAX;
         }
         j["pipelines"][0]["consumer"]["next_calls"] = INT64_MAX;
       }},
      {"a huge host",
       [](nlohmann::json& j) {
         j["host"]["cores"] = 2147483647;
         j["host"]["memory_bytes"] = INT64_MAX;
       }},
      {"no host at all",
       [](nlohmann::json& j) {
         j["host"]["cores"] = 0;
         j["host"]["memory_bytes"] = 0;
       }},
      {"time figures at the edge of a double",
       [](nlohmann::json& j) {
         j["job"]["duration"] = 1e308;
         j["tracer"]["interval"] = 1e-308;
         for (auto& s : j["pipelines"][0]["stages"]) {
           s["cpu_seconds"] = 1e308;
           s["busy_seconds"] = 1e-308;
         }
       }},
      {"a buffer of INT_MAX",
       [](nlohmann::json& j) {
         for (auto& s : j["pipelines"][0]["stages"]) s["buffer_size"] = 2147483647;
       }},
  };
  for (const auto& [what, edit] : edits) {
    SCOPED_TRACE(what);
    nlohmann::json j = good;
    edit(j);
    const fs::path path = root_ / "absurd.json";
    std::ofstream(path, std::ios::trunc) << j.dump();
    for (const char* command : {"analyze", "tune"}) {
      SCOPED_TRACE(command);
      const auto r = Cli({command, path.string(), "--json"});
      // Either an answer or a clear refusal; never a crash, a sanitizer report or an internal
      // error.
      ASSERT_TRUE(WIFEXITED(r.status)) << "killed by signal " << r.signal() << "\n" << r.err;
      EXPECT_THAT(r.exit_code(), AnyOf(0, 1)) << r.err;
      EXPECT_THAT(r.err, Not(HasSubstr("internal error")));
      EXPECT_THAT(r.err, Not(HasSubstr("Sanitizer")));
      if (r.exit_code() == 0) ParseOrFail(r.out, std::string(command) + " --json");
      if (r.exit_code() == 1) {
        EXPECT_THAT(r.err, HasSubstr("sluice: "));
      }
    }
  }
}

}  // namespace
}  // namespace sluice
