// `sluice inspect`: reads the C++ source of registered ops and reports, with file:line
// evidence, whether each is deterministic, stateless, free of I/O and (when parallelizable) free
// of data races; writes ops.json for `sluice tune --ops`.
//
//   sluice inspect [-p BUILD_DIR] FILES... [--json] [-o ops.json] [-I DIR] [--extra-arg ARG]
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/common/error.h"
#include "sluice/inspect/inspect.h"
#include "tools/sluice/commands.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct InspectCommandOptions {
  std::vector<std::string> files;
  std::string build_dir;
  std::vector<std::string> include_dirs;
  std::vector<std::string> extra_args;
  std::string out;
  bool json = false;
  bool strict = false;
  bool no_precompile = false;
};

std::string VerdictText(inspect::Verdict v, const std::vector<std::string>& guards, const char* yes,
                        const char* no) {
  switch (v) {
    case inspect::Verdict::kHolds:
      return yes;
    case inspect::Verdict::kViolated:
      return no;
    case inspect::Verdict::kConditional:
      return fmt::format("{} when {} is set", no, fmt::join(guards, ", "));
  }
  return "?";
}

void PrintProperty(const inspect::OpReport& op, inspect::Property p, const std::string& verdict,
                   const inspect::DeclaredValue* declared) {
  fmt::print("  {}: {}", inspect::PropertyName(p), verdict);
  if (declared != nullptr && declared->found) fmt::print(" (declared: {})", declared->text);
  fmt::print("\n");
  for (const inspect::Evidence& e : op.evidence) {
    if (e.property != p) continue;
    fmt::print("    {}:{}: {}{}\n", e.file, e.line, e.what,
               e.guards.empty() ? "" : fmt::format(" [if {}]", fmt::join(e.guards, ", ")));
  }
}

void PrintText(const inspect::OpsReport& report) {
  for (const inspect::OpReport& op : report.ops) {
    fmt::print("op '{}' ({}, {}:{})\n", op.name, op.class_name, op.file, op.line);
    PrintProperty(op, inspect::Property::kDeterministic,
                  VerdictText(op.deterministic_verdict, op.deterministic_guards, "deterministic",
                              "non-deterministic"),
                  &op.declared_deterministic);
    PrintProperty(op, inspect::Property::kStateless,
                  VerdictText(op.stateless_verdict, op.stateless_guards, "stateless", "stateful"),
                  &op.declared_stateless);
    PrintProperty(op, inspect::Property::kIo, op.io ? "does I/O" : "no I/O", nullptr);
    if (op.race ||
        (op.declared_parallelizable.found && op.declared_parallelizable.text != "false")) {
      PrintProperty(op, inspect::Property::kRace,
                    fmt::format("{} (declared parallelizable: {})",
                                op.race ? "data race: workers share state written without a lock "
                                          "or an atomic"
                                        : "no data race",
                                op.declared_parallelizable.text),
                    nullptr);
    }
    if (!op.unresolved_calls.empty()) {
      fmt::print("  not followed (defined outside the file, assumed clean): {}\n",
                 fmt::join(op.unresolved_calls, ", "));
    }
    for (const std::string& d : inspect::Disagreements(op)) fmt::print("  warning: {}\n", d);
    fmt::print("\n");
  }
  if (report.ops.empty()) fmt::print("no op registered with SLUICE_REGISTER_OP in these files\n");
}

int Inspect(const InspectCommandOptions& opt) {
  inspect::InspectOptions options;
  options.build_dir = opt.build_dir;
  options.precompile = !opt.no_precompile;
  if (!opt.build_dir.empty() && !fs::exists(fs::path(opt.build_dir) / "compile_commands.json")) {
    Fail("{}: no compile_commands.json (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)",
         opt.build_dir);
  }
  for (const std::string& dir : opt.include_dirs) options.extra_args.push_back("-I" + dir);
  for (const std::string& a : opt.extra_args) options.extra_args.push_back(a);
  const inspect::OpsReport report = inspect::Inspect(opt.files, options);
  const std::string json = inspect::ToJson(report).dump(2) + "\n";
  if (!opt.out.empty()) {
    std::ofstream out(opt.out);
    if (!(out << json)) Fail("{}: cannot write the ops file", opt.out);
  }
  if (opt.json) {
    fmt::print("{}", json);
  } else {
    PrintText(report);
    if (!opt.out.empty()) fmt::print("wrote {} (use it with sluice tune --ops)\n", opt.out);
  }
  if (opt.strict) {
    for (const inspect::OpReport& op : report.ops) {
      if (!inspect::Disagreements(op).empty()) return 1;
    }
  }
  return 0;
}

}  // namespace

Action AddInspectCommand(CLI::App& app) {
  auto opt = std::make_shared<InspectCommandOptions>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "Check from their C++ source whether ops are deterministic, stateless, do I/O");
  sub->add_option("files", opt->files, "Source files that register ops (SLUICE_REGISTER_OP)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-p,--build-dir", opt->build_dir,
                  "Build directory whose compile_commands.json gives each file's flags and the "
                  "project's other files, whose functions calls are followed into; results are "
                  "cached in BUILD_DIR/.sluice-inspect-cache");
  // One value each (repeat the option for more): a vector option would otherwise take the
  // files that follow it as values too.
  sub->add_option("-I,--include", opt->include_dirs, "Add an include directory (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--extra-arg", opt->extra_args,
                  "Add a compiler argument (-DX=1, -std=c++17; repeatable)")
      ->allow_extra_args(false);
  sub->add_option("-o,--out", opt->out, "Write ops.json here (for sluice tune --ops)");
  sub->add_flag("--json", opt->json, "Print ops.json on stdout");
  sub->add_flag("--no-precompile", opt->no_precompile,
                "Parse the system headers in every file instead of once into a precompiled "
                "header (slower; the findings are the same)");
  sub->add_flag("--strict", opt->strict,
                "Exit 1 when an op's declared properties disagree with its source");
  return [opt] { return Inspect(*opt); };
}

}  // namespace sluice::cli
