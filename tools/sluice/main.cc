// sluice: finds why an ML input pipeline starves its training job and fixes its config.
#include <cstdio>
#include <exception>
#include <map>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "tools/sluice/commands.h"

namespace {
constexpr const char* kVersion = SLUICE_VERSION;  // from CMake's project()
}

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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: internal error: %s\n", e.what());
    return 1;
  }
  return 2;
}
