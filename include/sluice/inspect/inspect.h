// `sluice inspect`: reads the C++ source of ops registered with SLUICE_REGISTER_OP (libclang)
// and classifies each op's processing code as (non-)deterministic, stateful and doing I/O, with
// file:line evidence; plus the ops.json form the tuner reads and the overrides it implies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/trace/trace.h"

namespace sluice::inspect {

// kRace: a parallelizable op's processing writes state its workers share (a member, a static, a
// global) without a lock or an atomic.
enum class Property { kDeterministic, kStateless, kIo, kRace };

// "deterministic", "stateless", "io" or "race": the names ops.json uses.
const char* PropertyName(Property p);

// One reason a property does not hold, at a place in the source.
struct Evidence {
  Property property = Property::kDeterministic;
  std::string file;
  int line = 0;
  std::string what;
  // Op members whose value decides whether this code runs (`if (random_) ...`); empty when it
  // always can.
  std::vector<std::string> guards;
};

// Whether a property holds for every configuration of the op, for none, or only depending on
// members (set from the op's args) that guard every finding.
enum class Verdict { kHolds, kViolated, kConditional };

// What the op's properties() returns for one field, read from its source.
struct DeclaredValue {
  bool found = false;                // properties() was found and read
  std::string text;                  // the expression as written ("true", "!random_")
  std::optional<bool> value;         // when it is a constant
  std::vector<std::string> members;  // op members the expression reads (when not constant)
};

struct OpReport {
  std::string name;        // the registered name
  std::string class_name;  // the op's class
  std::string file;        // where the class is defined
  int line = 0;
  // The inspected values: true when no evidence against the property was found (io: true when
  // the op does I/O). Conditional findings count: these are the conservative values.
  bool deterministic = true;
  bool stateless = true;
  bool io = false;
  // A data race: declared parallelizable, and its processing writes shared state without a lock
  // or an atomic (the evidence says where). The tuner gives such an op no workers.
  bool race = false;
  Verdict deterministic_verdict = Verdict::kHolds;
  Verdict stateless_verdict = Verdict::kHolds;
  std::vector<std::string> deterministic_guards;  // members, for kConditional
  std::vector<std::string> stateless_guards;
  std::vector<Evidence> evidence;
  // Calls out of the file that were not followed (not defined in it, not a known source).
  std::vector<std::string> unresolved_calls;
  DeclaredValue declared_parallelizable, declared_deterministic, declared_stateless;
};

struct OpsReport {
  std::vector<OpReport> ops;
};

struct InspectOptions {
  // A build directory holding compile_commands.json; empty: none. Files it does not list are
  // parsed with `extra_args` and the defaults (-std=c++20) alone.
  std::filesystem::path build_dir;
  std::vector<std::string> extra_args;  // appended to every file's arguments (-I..., -D...)
  // Parse the system headers the files include once, into a precompiled header with their
  // function bodies skipped, and load it in every parse (src/inspect/prelude.h). The findings
  // are the same either way; false parses every header in every file (slower, as a check).
  bool precompile = true;
};

// Inspects every op registered in `files`. Throws sluice::Error carrying the compiler's
// diagnostics when a file does not parse, or naming the file when it cannot be read.
OpsReport Inspect(const std::vector<std::string>& files, const InspectOptions& options = {});

// The sources listed in `build_dir`/compile_commands.json that register an op
// (SLUICE_REGISTER_OP("...), sorted: what to inspect for a job built there. Throws naming the
// file when it is missing or not a compilation database.
std::vector<std::string> SourcesRegisteringOps(const std::filesystem::path& build_dir);

// Where the inspected properties contradict the op's declared properties(), one sentence each
// ("op 'x' (X at f.cc:12): declares deterministic = true, but ... (f.cc:20)"). A property whose
// declaration reads the same member that guards every finding agrees (burn's `!random_`).
std::vector<std::string> Disagreements(const OpReport& op);

// The ops.json document: {"ops": [{"name", "class", "file", "line", "deterministic",
// "stateless", "io", "evidence": [{"property", "file", "line", "what"}], ...}]}.
nlohmann::ordered_json ToJson(const OpsReport& report);
// Reads an ops.json document; throws naming `origin` and the offending field.
OpsReport FromJson(const nlohmann::json& j, const std::string& origin);
OpsReport LoadOpsJson(const std::filesystem::path& path);

// Sets each stage's `inspected` from the op of the same name and makes its properties the
// conservative combination of declared and inspected (non-deterministic when either says so;
// not parallelizable when inspected stateful). Returns one warning per disagreement between a
// stage's declared property and the inspected one, naming the evidence's file:line.
std::vector<std::string> ApplyInspection(const OpsReport& report, trace::PipelineTrace& pipeline);

}  // namespace sluice::inspect
