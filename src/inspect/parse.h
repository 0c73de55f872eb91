// Parsing an op's source with libclang: its compile command from the build's
// compile_commands.json (or -std=c++20), clang's resource directory, and the compiler's errors.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "inspect/clang_api.h"
#include "inspect/prelude.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect::internal {

// Parses `file` with the arguments `options` give it, loading the system headers from
// `prelude`'s precompiled header when one applies (null: none). Throws sluice::Error when the
// file is missing, libclang fails, or the code does not compile (with the compiler's messages,
// from a parse without the prelude).
UnitPtr Parse(CXIndex index, const std::string& file, const InspectOptions& options,
              Prelude* prelude = nullptr);

// The arguments `file` is parsed with: its compile command from `options.build_dir` when listed
// there (paths made absolute; the compiler, output and source removed), else -std=c++20; then
// clang's resource directory and `options.extra_args`.
std::vector<std::string> ArgumentsFor(const std::string& file, const InspectOptions& options);

// `file` absolute, with its symbolic links and dot segments resolved as far as it exists: how the
// project's files are named to compare them. `file` itself when that fails.
std::string CanonicalPath(const std::string& file);

// Every file the unit includes, directly or not (the main file too).
std::set<std::string> Inclusions(CXTranslationUnit unit);

}  // namespace sluice::inspect::internal
