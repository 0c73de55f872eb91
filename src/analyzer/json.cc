// `sluice analyze --json`: the analysis as JSON, with the field names DESIGN.md fixes first.
#include <cmath>

#include <nlohmann/json.hpp>

#include "sluice/analyzer/analysis.h"

namespace sluice::analyzer {
namespace {

using Json = nlohmann::ordered_json;

// JSON has no infinity or NaN; such a figure (never expected) is written as null.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json OrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

Json LimitJson(const Limit& l) {
  return Json{{"kind", ToString(l.kind)},
              {"stage", OrNull(l.stage)},
              {"outputs_per_s", Number(l.outputs_per_s)},
              {"why", l.why},
              {"stages", l.stages}};
}

}  // namespace

std::string ToJson(const Analysis& a) {
  Json j;
  j["measured_outputs_per_s"] = Number(a.measured_outputs_per_s);
  j["predicted_outputs_per_s"] = Number(a.predicted_outputs_per_s);
  if (!a.limits.empty()) {
    const Limit& b = a.Bottleneck();
    j["bottleneck"] = {{"kind", ToString(b.kind)},
                       {"stage", OrNull(b.stage)},
                       {"why", b.why},
                       {"outputs_per_s", Number(b.outputs_per_s)},
                       {"stages", b.stages}};
  } else {
    j["bottleneck"] = nullptr;
  }
  Json limits = Json::array();
  for (const Limit& l : a.limits) limits.push_back(LimitJson(l));
  j["limits"] = std::move(limits);
  j["input_bound"] = {{"wait_fraction", Number(a.input_bound.wait_fraction)},
                      {"verdict", ToString(a.input_bound.verdict)},
                      {"why", a.input_bound.why}};
  Json stages = Json::array();
  for (const StageAnalysis& s : a.stages) {
    stages.push_back({{"name", s.name},
                      {"op", s.op},
                      {"parallelizable", s.parallelizable},
                      {"holds_gil", s.holds_gil},
                      {"async", s.async},
                      {"parallelism", s.parallelism},
                      {"buffer_size", s.buffer_size},
                      {"ordered", s.ordered},
                      {"runs_on", s.runs_on},
                      {"run_by", OrNull(s.run_by)},
                      {"shares_thread_with", s.shares_thread_with},
                      {"elements", s.elements},
                      {"elements_per_s", Number(s.elements_per_s)},
                      {"routing_ratio", Number(s.routing_ratio)},
                      {"visit_ratio", Number(s.visit_ratio)},
                      {"cpu_demand_seconds", Number(s.cpu_demand)},
                      {"wall_demand_seconds", Number(s.wall_demand)},
                      {"turn_wait_demand_seconds", Number(s.turn_wait_demand)},
                      {"service_seconds", Number(s.service_seconds)},
                      {"utilization", Number(s.utilization)},
                      {"capacity_outputs_per_s", Number(s.capacity_outputs_per_s)},
                      {"server_outputs_per_s", Number(s.server_outputs_per_s)},
                      {"bytes_per_element", Number(s.bytes_per_element)},
                      {"blocked_input_fraction", Number(s.blocked_input_fraction)},
                      {"blocked_output_fraction", Number(s.blocked_output_fraction)}});
  }
  j["stages"] = std::move(stages);
  j["pipeline"] = a.pipeline;
  j["output_noun"] = a.output_noun;
  j["outputs"] = a.outputs;
  j["window"] = {{"start", Number(a.window.start)},
                 {"end", Number(a.window.end)},
                 {"seconds", Number(a.window.seconds)},
                 {"samples", a.window.samples},
                 {"method", a.window.method}};
  j["confidence"] = {{"ok", a.confidence.ok},
                     {"reason", a.confidence.reason},
                     {"more_seconds", Number(a.confidence.more_seconds)},
                     {"rate_cv", Number(a.confidence.rate_cv)},
                     {"rate_stderr", Number(a.confidence.rate_stderr)},
                     {"block_seconds", Number(a.confidence.block_seconds)}};
  j["consumer"] = {{"step_seconds", Number(a.consumer_step_seconds)},
                   {"outputs_per_s", a.consumer_outputs_per_s > 0 ? Number(a.consumer_outputs_per_s)
                                                                  : Json(nullptr)}};
  j["resources"] = {{"cores", Number(a.cores)},
                    {"cores_overridden", a.cores_overridden},
                    {"other_cpu_demand_seconds", Number(a.other_cpu_demand)},
                    {"host_other_cores", Number(a.host_other_cores)},
                    {"disk_mb_per_s", Number(a.disk_mb_per_s)},
                    {"disk_device", OrNull(a.disk_device)},
                    {"disk_bytes_per_output", Number(a.disk_bytes_per_output)},
                    {"disk_bytes_source", OrNull(a.disk_bytes_source)},
                    {"memory_bytes", a.memory_bytes},
                    {"rss_bytes", a.rss_bytes}};
  j["cores_to_saturate_consumer"] =
      a.cores_to_saturate_consumer ? Number(*a.cores_to_saturate_consumer) : Json(nullptr);
  j["gpu"] = {
      {"status", a.gpu_status},
      {"idle_fraction", a.gpu_idle_fraction ? Number(*a.gpu_idle_fraction) : Json(nullptr)}};
  j["notes"] = a.notes;
  return j.dump(2) + "\n";
}

}  // namespace sluice::analyzer
