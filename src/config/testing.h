// Test hooks of the config module: not part of the public headers, so that a job never sees
// them. Tests include it as "src/config/testing.h".
#pragma once

#include <filesystem>
#include <functional>

namespace sluice::config::testing {

// Fault injection: `hook` runs inside Document::Save after the temporary file is written and
// synced and before it is renamed over the target (a test kills the process there). Pass an
// empty function to remove it. Not for production use.
void SetSaveHookForTesting(std::function<void(const std::filesystem::path& tmp)> hook);

}  // namespace sluice::config::testing
