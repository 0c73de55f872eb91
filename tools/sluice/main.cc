// sluice: finds why an ML input pipeline starves its training job and fixes its config.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "tools/sluice/commands.h"

namespace {
constexpr const char* kVersion = SLUICE_VERSION;  // from CMake's project()

// "<path>: <what went wrong>" from a std::filesystem error, whose what() reads
// "filesystem error: <operation>: <reason> [<path1>] [<path2>]" in libstdc++.
std::string Describe(const std::filesystem::filesystem_error& e) {
  std::string what = e.what();
  constexpr std::string_view kPrefix = "filesystem error: ";
  if (what.starts_with(kPrefix)) what.erase(0, kPrefix.size());
  for (const std::filesystem::path* p : {&e.path2(), &e.path1()}) {
    const std::string suffix = " [" + p->string() + "]";
    if (!p->empty() && what.ends_with(suffix)) what.erase(what.size() - suffix.size());
  }
  if (e.path1().empty()) return what;
  if (e.path2().empty()) return fmt::format("{}: {}", e.path1().string(), what);
  return fmt::format("{} -> {}: {}", e.path1().string(), e.path2().string(), what);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice: find why an ML input pipeline starves training, and fix its config",
               "sluice"};
  app.set_version_flag("--version", fmt::format("sluice {}", kVersion));
  app.require_subcommand(1);
  std::map<CLI::App*, sluice::cli::Action> actions;
  auto add = [&](sluice::cli::Action action) {
    actions[app.get_subcommands({}).back()] = std::move(action);
  };
  add(sluice::cli::AddRunCommand(app));
  add(sluice::cli::AddProfileCommand(app));
  add(sluice::cli::AddAnalyzeCommand(app));
  add(sluice::cli::AddTuneCommand(app));
  add(sluice::cli::AddApplyCommand(app));
  add(sluice::cli::AddReportCommand(app));
  add(sluice::cli::AddInspectCommand(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // --help and --version exit 0; usage errors exit 2
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const sluice::Error& e) {
    std::fprintf(stderr, "sluice: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be created, read or written: their error, not ours.
    std::fprintf(stderr, "sluice: %s\n", Describe(e).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: internal error: %s\n", e.what());
    return 1;
  }
  return 2;
}
