// ops.json (the inspected properties the tuner reads), declared-versus-inspected comparison, and
// the conservative overrides applied to a trace's stages.
#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/common/error.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect {
namespace {

using Json = nlohmann::ordered_json;

const Evidence* FirstEvidence(const OpReport& op, Property p) {
  for (const Evidence& e : op.evidence) {
    if (e.property == p && e.guards.empty()) return &e;
  }
  for (const Evidence& e : op.evidence) {
    if (e.property == p) return &e;
  }
  return nullptr;
}

std::string Where(const Evidence* e) {
  return e == nullptr ? "" : fmt::format("{} ({}:{})", e->what, e->file, e->line);
}

bool Intersects(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::any_of(a.begin(), a.end(), [&](const std::string& x) {
    return std::find(b.begin(), b.end(), x) != b.end();
  });
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kHolds:
      return "holds";
    case Verdict::kViolated:
      return "violated";
    case Verdict::kConditional:
      return "conditional";
  }
  return "?";
}

Verdict ParseVerdict(const std::string& s, const std::string& where) {
  if (s == "holds") return Verdict::kHolds;
  if (s == "violated") return Verdict::kViolated;
  if (s == "conditional") return Verdict::kConditional;
  Fail("{}: expected \"holds\", \"violated\" or \"conditional\", got \"{}\"", where, s);
}

Property ParseProperty(const std::string& s, const std::string& where) {
  if (s == "deterministic") return Property::kDeterministic;
  if (s == "stateless") return Property::kStateless;
  if (s == "io") return Property::kIo;
  if (s == "race") return Property::kRace;
  Fail("{}: expected \"deterministic\", \"stateless\", \"io\" or \"race\", got \"{}\"", where, s);
}

// A declaration whose value depends on the same members that guard every finding agrees: the
// op declares the property per configuration, and the findings sit behind that configuration.
std::optional<std::string> Check(const OpReport& op, const char* property, const char* violated,
                                 const DeclaredValue& declared, Verdict verdict,
                                 const std::vector<std::string>& guards, Property p) {
  if (!declared.found) return std::nullopt;
  const std::string head = fmt::format("op '{}' ({} at {}:{}): declares {} = {}", op.name,
                                       op.class_name, op.file, op.line, property, declared.text);
  const Evidence* e = FirstEvidence(op, p);
  if (declared.value.has_value()) {
    if (*declared.value && verdict != Verdict::kHolds) {
      return fmt::format("{}, but it is {}{}: {}", head, violated,
                         verdict == Verdict::kConditional
                             ? fmt::format(" when {} is set", fmt::join(guards, ", "))
                             : "",
                         Where(e));
    }
    if (!*declared.value && verdict == Verdict::kHolds) {
      return fmt::format("{}, but inspection finds nothing that makes it {}", head, violated);
    }
    return std::nullopt;
  }
  if (verdict == Verdict::kConditional && Intersects(declared.members, guards)) return std::nullopt;
  if (verdict == Verdict::kHolds) {
    return fmt::format("{}, but inspection finds nothing that makes it {}", head, violated);
  }
  if (verdict == Verdict::kViolated) {
    return fmt::format("{}, but it is {} whatever {} holds: {}", head, violated,
                       fmt::join(declared.members, ", "), Where(e));
  }
  return fmt::format("{}, but it is {} depending on {} instead: {}", head, violated,
                     fmt::join(guards, ", "), Where(e));
}

Json DeclaredJson(const DeclaredValue& d) { return Json{{"text", d.text}, {"members", d.members}}; }

DeclaredValue DeclaredFromJson(const Json& j) {
  DeclaredValue d;
  d.found = true;
  d.text = j.value("text", "");
  if (j.contains("members")) d.members = j.at("members").get<std::vector<std::string>>();
  if (d.text == "true" || d.text == "false") d.value = d.text == "true";
  return d;
}

}  // namespace

std::vector<std::string> Disagreements(const OpReport& op) {
  std::vector<std::string> out;
  if (auto m = Check(op, "deterministic", "non-deterministic", op.declared_deterministic,
                     op.deterministic_verdict, op.deterministic_guards, Property::kDeterministic)) {
    out.push_back(*m);
  }
  if (auto m = Check(op, "stateless", "stateful", op.declared_stateless, op.stateless_verdict,
                     op.stateless_guards, Property::kStateless)) {
    out.push_back(*m);
  }
  if (op.race) {
    out.push_back(fmt::format(
        "op '{}' ({} at {}:{}): declares parallelizable = {}, but Process writes state its workers "
        "share without a lock or an atomic (a data race): {}",
        op.name, op.class_name, op.file, op.line,
        op.declared_parallelizable.found ? op.declared_parallelizable.text : "true",
        Where(FirstEvidence(op, Property::kRace))));
  }
  return out;
}

nlohmann::ordered_json ToJson(const OpsReport& report) {
  Json ops = Json::array();
  for (const OpReport& op : report.ops) {
    Json o;
    o["name"] = op.name;
    o["class"] = op.class_name;
    o["file"] = op.file;
    o["line"] = op.line;
    o["deterministic"] = op.deterministic;
    o["stateless"] = op.stateless;
    o["io"] = op.io;
    o["race"] = op.race;
    o["verdicts"] = {{"deterministic", VerdictName(op.deterministic_verdict)},
                     {"stateless", VerdictName(op.stateless_verdict)}};
    o["guards"] = {{"deterministic", op.deterministic_guards}, {"stateless", op.stateless_guards}};
    if (op.declared_deterministic.found) {
      o["declared"] = {{"parallelizable", DeclaredJson(op.declared_parallelizable)},
                       {"deterministic", DeclaredJson(op.declared_deterministic)},
                       {"stateless", DeclaredJson(op.declared_stateless)}};
    }
    Json evidence = Json::array();
    for (const Evidence& e : op.evidence) {
      Json je{{"property", PropertyName(e.property)},
              {"file", e.file},
              {"line", e.line},
              {"what", e.what}};
      if (!e.guards.empty()) je["guards"] = e.guards;
      evidence.push_back(std::move(je));
    }
    o["evidence"] = std::move(evidence);
    o["unresolved_calls"] = op.unresolved_calls;
    o["disagreements"] = Disagreements(op);
    ops.push_back(std::move(o));
  }
  return Json{{"ops", std::move(ops)}};
}

OpsReport FromJson(const nlohmann::json& j, const std::string& origin) {
  OpsReport report;
  if (!j.is_object() || !j.contains("ops") || !j.at("ops").is_array()) {
    Fail("{}: expected an object with an \"ops\" array", origin);
  }
  size_t index = 0;
  for (const auto& o : j.at("ops")) {
    const std::string where = fmt::format("{}: ops[{}]", origin, index++);
    try {
      OpReport op;
      op.name = o.at("name").get<std::string>();
      op.class_name = o.value("class", "");
      op.file = o.value("file", "");
      op.line = o.value("line", 0);
      op.deterministic = o.at("deterministic").get<bool>();
      op.stateless = o.at("stateless").get<bool>();
      op.io = o.value("io", false);
      op.race = o.value("race", false);
      op.deterministic_verdict = op.deterministic ? Verdict::kHolds : Verdict::kViolated;
      op.stateless_verdict = op.stateless ? Verdict::kHolds : Verdict::kViolated;
      if (o.contains("verdicts")) {
        const auto& v = o.at("verdicts");
        if (v.contains("deterministic")) {
          op.deterministic_verdict =
              ParseVerdict(v.at("deterministic").get<std::string>(), where + ".verdicts");
        }
        if (v.contains("stateless")) {
          op.stateless_verdict =
              ParseVerdict(v.at("stateless").get<std::string>(), where + ".verdicts");
        }
      }
      if (o.contains("guards")) {
        const auto& g = o.at("guards");
        op.deterministic_guards = g.value("deterministic", std::vector<std::string>{});
        op.stateless_guards = g.value("stateless", std::vector<std::string>{});
      }
      if (o.contains("declared")) {
        const auto& d = o.at("declared");
        if (d.contains("parallelizable")) {
          op.declared_parallelizable = DeclaredFromJson(d.at("parallelizable"));
        }
        if (d.contains("deterministic")) {
          op.declared_deterministic = DeclaredFromJson(d.at("deterministic"));
        }
        if (d.contains("stateless")) op.declared_stateless = DeclaredFromJson(d.at("stateless"));
      }
      for (const auto& e : o.value("evidence", nlohmann::json::array())) {
        Evidence ev;
        ev.property = ParseProperty(e.at("property").get<std::string>(), where + ".evidence");
        ev.file = e.value("file", "");
        ev.line = e.value("line", 0);
        ev.what = e.value("what", "");
        ev.guards = e.value("guards", std::vector<std::string>{});
        op.evidence.push_back(std::move(ev));
      }
      op.unresolved_calls = o.value("unresolved_calls", std::vector<std::string>{});
      report.ops.push_back(std::move(op));
    } catch (const nlohmann::json::exception& e) {
      Fail("{}: {}", where, e.what());
    }
  }
  return report;
}

OpsReport LoadOpsJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) Fail("{}: cannot open the ops file", path.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    Fail("{}: not JSON: {}", path.string(), e.what());
  }
  return FromJson(j, path.string());
}

std::vector<std::string> SourcesRegisteringOps(const std::filesystem::path& build_dir) {
  const std::filesystem::path db = build_dir / "compile_commands.json";
  std::ifstream in(db);
  if (!in) Fail("{}: cannot open (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)", db.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    Fail("{}: not JSON: {}", db.string(), e.what());
  }
  if (!j.is_array()) Fail("{}: expected an array of compile commands", db.string());
  std::vector<std::string> files;
  for (const auto& entry : j) {
    if (!entry.is_object() || !entry.contains("file")) continue;
    std::filesystem::path file = entry["file"].get<std::string>();
    if (file.is_relative() && entry.contains("directory")) {
      file = std::filesystem::path(entry["directory"].get<std::string>()) / file;
    }
    std::ifstream source(file);
    std::stringstream text;
    text << source.rdbuf();
    if (text.str().find("SLUICE_REGISTER_OP(\"") == std::string::npos) continue;
    files.push_back(file.lexically_normal().string());
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

std::vector<std::string> ApplyInspection(const OpsReport& report, trace::PipelineTrace& pipeline) {
  std::vector<std::string> warnings;
  for (trace::StageTrace& s : pipeline.stages) {
    const OpReport* op = nullptr;
    for (const OpReport& candidate : report.ops) {
      if (candidate.name == s.op) op = &candidate;
    }
    if (op == nullptr) {
      s.inspected = "unknown";
      continue;
    }
    // Findings that sit behind the same member the declaration reads: the traced declaration
    // is that expression evaluated for this stage's args, so it is the inspected value too.
    bool deterministic = op->deterministic;
    if (op->deterministic_verdict == Verdict::kConditional &&
        Intersects(op->declared_deterministic.members, op->deterministic_guards)) {
      deterministic = s.deterministic;
    }
    bool stateless = op->stateless;
    if (op->stateless_verdict == Verdict::kConditional &&
        Intersects(op->declared_stateless.members, op->stateless_guards)) {
      stateless = s.stateless;
    }
    const std::string head = fmt::format("stage '{}' (op '{}')", s.name, s.op);
    if (deterministic != s.deterministic) {
      if (!deterministic) {
        warnings.push_back(
            fmt::format("{}: declared deterministic, inspected non-deterministic: {}; treated as "
                        "non-deterministic (no cache at or below it)",
                        head, Where(FirstEvidence(*op, Property::kDeterministic))));
      } else {
        warnings.push_back(fmt::format(
            "{}: declared non-deterministic, but inspection of {}:{} finds no source of "
            "non-determinism; kept non-deterministic",
            head, op->file, op->line));
      }
    }
    if (stateless != s.stateless) {
      if (!stateless) {
        warnings.push_back(
            fmt::format("{}: declared stateless, inspected stateful: {}; {}", head,
                        Where(FirstEvidence(*op, Property::kStateless)),
                        s.parallelizable ? "not given workers" : "treated as stateful"));
      } else {
        warnings.push_back(fmt::format(
            "{}: declared stateful, but inspection of {}:{} finds no state; kept stateful", head,
            op->file, op->line));
      }
    }
    if (op->race && s.parallelizable) {
      warnings.push_back(fmt::format(
          "{}: data race: declared parallelizable, but its Process writes state the workers share "
          "without a lock or an atomic: {}; given no workers",
          head, Where(FirstEvidence(*op, Property::kRace))));
      s.parallelizable = false;
    }
    s.inspected = deterministic ? "deterministic" : "non-deterministic";
    s.deterministic = s.deterministic && deterministic;
    s.stateless = s.stateless && stateless;
    if (!stateless) s.parallelizable = false;
  }
  return warnings;
}

}  // namespace sluice::inspect
