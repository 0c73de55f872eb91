// The analyzer's what-if against other configs: for one trace, prints the throughput Predict
// gives each config's knobs (parallelism, buffer_size, deterministic per stage, matched by name),
// one line per config: "PATH PREDICTED". bench/tuner_grid.sh pairs these with measured runs.
//
//   build/bin/whatif_bench TRACE CONFIG... [--cores N]
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"
#include "sluice/trace/io.h"

int main(int argc, char** argv) {
  CLI::App app{"Predict the throughput of other configs from one trace", "whatif_bench"};
  std::string trace_path;
  std::vector<std::string> configs;
  double cores = 0;
  bool limits = false;
  app.add_option("trace", trace_path, "A trace written by sluice profile")->required();
  app.add_option("configs", configs, "Configs of the same pipeline with other knobs")->required();
  app.add_option("--cores", cores, "Predict for this many cores (default: the traced host's)");
  app.add_flag("--limits", limits, "Also print every limit: kind:stage=outputs/s, lowest first");
  CLI11_PARSE(app, argc, argv);
  try {
    const sluice::trace::Trace trace = sluice::trace::ReadTrace(trace_path);
    const sluice::analyzer::Analysis a = sluice::analyzer::Analyze(trace);
    sluice::analyzer::Resources res = sluice::analyzer::CurrentResources(a);
    if (cores > 0) res.cores = cores;
    for (const std::string& path : configs) {
      std::ifstream in(path);
      const nlohmann::json doc = nlohmann::json::parse(in);
      sluice::analyzer::Knobs knobs = sluice::analyzer::CurrentKnobs(a);
      for (size_t i = 0; i < a.stages.size(); ++i) {
        for (const nlohmann::json& s : doc.at("stages")) {
          if (s.value("name", "") != a.stages[i].name) continue;
          knobs.stages[i].parallelism = s.value("parallelism", 1);
          knobs.stages[i].buffer_size = s.value("buffer_size", 0);
          knobs.stages[i].ordered = s.value("deterministic", true);
        }
      }
      const sluice::analyzer::Prediction pred = sluice::analyzer::Predict(a, knobs, res);
      fmt::print("{} {:.2f}", path, pred.outputs_per_s);
      if (limits) {
        for (const sluice::analyzer::Limit& l : pred.limits) {
          fmt::print(" {}:{}={:.2f}", sluice::analyzer::ToString(l.kind), l.stage, l.outputs_per_s);
        }
      }
      fmt::print("\n");
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "whatif_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
