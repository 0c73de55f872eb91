// The system headers the inspected files include (the standard library, fmt, JSON, OpenCV...),
// parsed once into a precompiled header per set of compile arguments and loaded by every parse
// with those arguments (-include-pch), instead of parsed again for every file. Their function
// bodies are skipped: the inspector never follows a call into a system header (known_calls.h
// says what those do), so it needs their declarations only.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "inspect/cache.h"

namespace sluice::inspect::internal {

class Prelude {
 public:
  // `files`: the files about to be inspected, whose system includes (SystemIncludes) the
  // prelude holds. With a `cache` (which outlives the prelude) the precompiled headers are kept
  // in its directory for later runs: one serves again while every header it read keeps its time
  // and it holds all those `files` include. Without one (or when its directory cannot be
  // written) they go to a temporary directory of their own, removed with the prelude.
  explicit Prelude(const std::vector<std::string>& files, const Cache* cache = nullptr);
  ~Prelude();
  Prelude(const Prelude&) = delete;
  Prelude& operator=(const Prelude&) = delete;

  // What to add to the arguments `args` of a parse of `file`: "-include-pch" and the
  // precompiled header for `args` (built on first use), or nothing when none applies: the file
  // defines or undefines a macro before its last #include (which the precompiled header would
  // not see), or the header did not build. Thread-safe.
  std::vector<std::string> ArgumentsFor(const std::string& file,
                                        const std::vector<std::string>& args);

 private:
  // The precompiled header for the arguments `key` (`base` in full) that holds `needed`: the
  // cache's when it serves, else one built (and kept in the cache); "" when none builds.
  std::string Obtain(const std::string& key, const std::vector<std::string>& base,
                     const std::vector<std::string>& needed) SLUICE_REQUIRES(mu_);
  // Builds the precompiled header `pch` of `headers` (written to `header`) for `args`; false
  // when it does not build. `sources`: the files it read.
  bool Build(const std::vector<std::string>& args, const std::vector<std::string>& headers,
             const std::filesystem::path& header, const std::filesystem::path& pch,
             std::set<std::string>& sources);

  std::vector<std::string> files_;
  const Cache* cache_;
  std::filesystem::path dir_;
  Mutex mu_;
  std::map<std::string, std::string> built_ SLUICE_GUARDED_BY(mu_);  // arguments -> PCH, or ""
};

// The system headers `files` include for a parse with `args`, directly or through the project's
// headers, in order of first appearance: `#include <...>` names found under a -isystem
// directory or the compiler's own (/usr/include...), not under a -I or -iquote one. A header
// found under those (or beside its includer, for `#include "..."`) is the project's, and its
// own includes are followed.
std::vector<std::string> SystemIncludes(const std::vector<std::string>& files,
                                        const std::vector<std::string>& args);

// The arguments of `args` that bear on system headers: without the project's macros (-D and -U,
// but for reserved names such as _GNU_SOURCE) and include directories (-I, -iquote), which the
// precompiled header must not carry into the files that load it. Files whose arguments differ
// only in those share a precompiled header.
std::vector<std::string> SystemArguments(const std::vector<std::string>& args);

// Whether `text` defines or undefines a macro before its last #include.
bool DefinesBeforeIncludes(const std::string& text);

}  // namespace sluice::inspect::internal
