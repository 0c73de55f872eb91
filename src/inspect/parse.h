// Parsing an op's source with libclang: its compile command from the build's
// compile_commands.json (or -std=c++20), clang's resource directory, and the compiler's errors.
#pragma once

#include <string>

#include "inspect/clang_api.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect::internal {

// Parses `file` with the arguments `options` give it. Throws sluice::Error when the file is
// missing, libclang fails, or the code does not compile (with the compiler's messages).
UnitPtr Parse(CXIndex index, const std::string& file, const InspectOptions& options);

}  // namespace sluice::inspect::internal
