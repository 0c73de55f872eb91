// The warning sink: stderr by default, replaceable by the CLI and the Python package.
#include "sluice/common/log.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "common/thread_annotations.h"

namespace sluice {
namespace {

struct SinkState {
  Mutex mu;
  std::shared_ptr<const WarningSink> sink SLUICE_GUARDED_BY(mu);  // null: the default
};

SinkState& State() {
  static SinkState* state = new SinkState;  // never destroyed: warnings may come at exit
  return *state;
}

void WriteToStderr(std::string_view message) {
  // One write per warning, so that warnings from several threads do not interleave.
  const std::string line = fmt::format("sluice: warning: {}\n", message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

void Warn(std::string_view message) {
  std::shared_ptr<const WarningSink> sink;
  {
    SinkState& state = State();
    MutexLock lock(state.mu);
    sink = state.sink;
  }
  if (sink) {
    (*sink)(message);
  } else {
    WriteToStderr(message);
  }
}

WarningSink SetWarningSink(WarningSink sink) {
  auto next = sink ? std::make_shared<const WarningSink>(std::move(sink)) : nullptr;
  SinkState& state = State();
  MutexLock lock(state.mu);
  std::shared_ptr<const WarningSink> previous = std::exchange(state.sink, std::move(next));
  return previous ? *previous : WarningSink();
}

}  // namespace sluice
