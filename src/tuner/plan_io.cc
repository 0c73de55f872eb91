// The plan's outputs: the rewritten config document, `sluice tune --json`, and memory sizes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/common/error.h"
#include "sluice/tuner/tuner.h"

namespace sluice::tuner {

TuneOptions OptionsFromConfig(const config::Document& config) {
  TuneOptions options;
  options.epochs = config.epochs();
  for (const config::StageSpec& s : config.stages()) {
    if (s.allow_reorder) options.reorder_allowed.insert(s.name);
  }
  const config::Json& json = config.json();
  options.allow_rewrite = json.contains("allow_rewrite") && json["allow_rewrite"].is_boolean() &&
                          json["allow_rewrite"].get<bool>();
  return options;
}

namespace {

// Replaces stages `r.first` and `r.second` by one stage running `r.op`: `second`'s object with
// the new op, and the workers and queue of whichever of the two had them.
void ApplyRewrite(const Rewrite& r, config::Document& tuned) {
  const size_t index = tuned.Stage(r.first).index;
  const config::Json first = tuned.json()["stages"][index];
  config::Json merged = tuned.json()["stages"][tuned.Stage(r.second).index];
  merged["op"] = r.op;
  for (std::string_view knob : {config::kKnobParallelism, config::kKnobBufferSize}) {
    const std::string key(knob);
    if (first.contains(key) && !merged.contains(key)) merged[key] = first[key];
  }
  tuned.RemoveStage(r.second);
  tuned.RemoveStage(r.first);
  tuned.InsertStage(index, merged);
}

}  // namespace

config::Document ApplyPlan(const Plan& plan, const config::Document& config) {
  config::Document tuned = config;
  for (const Change& change : plan.changes) {
    if (change.knob == kKnobCache) {
      // A cache stage right after the stage it caches, named so it cannot clash.
      std::vector<std::string> taken;
      for (const config::StageSpec& s : tuned.stages()) taken.push_back(s.name);
      const std::string name = config::UniqueStageName("cache", taken);
      const size_t after = tuned.Stage(change.stage).index;
      tuned.InsertStage(after + 1, config::Json{{"name", name}, {"op", "cache"}});
      continue;
    }
    if (change.knob == kKnobDeterministic) {
      tuned.SetKnob(change.stage, change.knob, config::Json(change.to != 0));
      continue;
    }
    tuned.SetKnob(change.stage, change.knob, config::Json(change.to));
  }
  for (const Rewrite& r : plan.rewrites) {
    if (r.applied) ApplyRewrite(r, tuned);
  }
  return tuned;
}

std::string ToJson(const Plan& plan, const config::Document& tuned) {
  using Json = nlohmann::ordered_json;
  Json out;
  out["predicted_outputs_per_s"] = plan.predicted_outputs_per_s;
  out["speedup"] = plan.speedup;
  Json changes = Json::array();
  for (const Change& c : plan.changes) {
    const bool flag = c.knob == kKnobDeterministic;
    changes.push_back({{"stage", c.stage},
                       {"knob", c.knob},
                       {"from", flag ? Json(c.from != 0) : Json(c.from)},
                       {"to", flag ? Json(c.to != 0) : Json(c.to)},
                       {"why", c.why},
                       {"effect", c.effect},
                       {"predicted_outputs_per_s", c.predicted_outputs_per_s}});
  }
  out["changes"] = changes;
  Json rewrites = Json::array();
  for (const Rewrite& r : plan.rewrites) {
    rewrites.push_back({{"stages", {r.first, r.second}},
                        {"op", r.op},
                        {"why", r.why},
                        {"predicted_outputs_per_s", r.predicted_outputs_per_s},
                        {"applied", r.applied}});
  }
  out["rewrites"] = rewrites;
  out["config"] = tuned.json();
  out["pipeline"] = plan.pipeline;
  out["output_noun"] = plan.output_noun;
  out["current_outputs_per_s"] = plan.current_outputs_per_s;
  out["current_predicted_outputs_per_s"] = plan.current_predicted_outputs_per_s;
  out["milp_outputs_per_s"] = plan.milp_outputs_per_s;
  if (!plan.prediction.limits.empty()) {
    const analyzer::Limit& b = plan.prediction.limits.front();
    out["bottleneck"] = {{"kind", analyzer::ToString(b.kind)},
                         {"stage", b.stage.empty() ? Json(nullptr) : Json(b.stage)},
                         {"why", b.why},
                         {"outputs_per_s", b.outputs_per_s}};
  } else {
    out["bottleneck"] = nullptr;
  }
  out["threads"] = plan.threads;
  out["memory_bytes"] = plan.memory_bytes;
  out["memory_budget_bytes"] = plan.memory_budget_bytes;
  out["cores"] = plan.cores;
  out["cache_after"] = nullptr;  // the stage a cache goes after, when the plan adds one
  for (const Change& c : plan.changes) {
    if (c.knob == "cache") out["cache_after"] = c.stage;
  }
  out["cores_needed_for_consumer"] =
      plan.cores_needed_for_consumer ? Json(*plan.cores_needed_for_consumer) : Json(nullptr);
  out["outputs_per_s_with_cores_needed"] = plan.outputs_per_s_with_cores_needed
                                               ? Json(*plan.outputs_per_s_with_cores_needed)
                                               : Json(nullptr);
  out["notes"] = plan.notes;
  return out.dump(2) + "\n";
}

int64_t ParseMemorySize(std::string_view text) {
  const std::string s(text);
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(s, &end);
  } catch (const std::exception&) {
    Fail("memory size '{}': expected a number with an optional unit (512M, 4G, 1000000)", s);
  }
  std::string unit;
  for (size_t i = end; i < s.size(); ++i) {
    if (!std::isspace(static_cast<unsigned char>(s[i]))) {
      unit += static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));
    }
  }
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() == 2 && unit.back() == 'I') unit.pop_back();  // "GiB"
  double scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else {
    Fail("memory size '{}': unknown unit (use K, M, G or T, or plain bytes)", s);
  }
  const double bytes = value * scale;
  if (!(bytes > 0) || !std::isfinite(bytes) || bytes > 9e18) {
    Fail("memory size '{}': must be a positive size", s);
  }
  return static_cast<int64_t>(std::llround(bytes));
}

}  // namespace sluice::tuner
