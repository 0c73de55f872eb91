// The project's other translation units, for calls the inspector cannot follow within a file:
// every source in the build's compile_commands.json that defines a called function is parsed
// once and summarized (what each function it defines writes among its parameters, statics and
// globals; whether it draws randomness, uses the clock as data, does I/O), summaries compose
// bottom-up, and they are cached by file and modification time under
// BUILD_DIR/.sluice-inspect-cache/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "inspect/clang_api.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect::internal {

// One finding a function's code gives, at its place. `race`: a write to a static or a global
// with no lock held, a data race when a parallel op's Process reaches it without a lock.
struct Effect {
  Property property = Property::kStateless;
  std::string file;
  int line = 0;
  std::string what;
  bool race = false;
};

struct FunctionSummary {
  std::vector<Effect> effects;
  std::vector<int> written_params;  // indices of the parameters it writes through
};

class Project {
 public:
  // Reads `options.build_dir`/compile_commands.json (which must exist).
  Project(CXIndex index, const InspectOptions& options);

  // The summary of the function with USR `usr`, called `name` (`Class::name` for a method),
  // from the project file that defines it; null when no project file does.
  // `from`: the caller's file, which is not searched.
  const FunctionSummary* Find(const std::string& usr, const std::string& name,
                              const std::string& from);

  // The directory holding the summaries' cache.
  std::filesystem::path CacheDir() const;

 private:
  // Makes the summaries of `file` known: from the cache when it is current, else parsed.
  void Load(const std::string& file);
  bool LoadCache(const std::string& file, int64_t mtime);
  // Writes the summaries `usrs` of `file`, with the files `deps` whose summaries they used.
  void SaveCache(const std::string& file, int64_t mtime, const std::set<std::string>& usrs,
                 const std::set<std::string>& deps) const;
  // Parses `file` and summarizes every function it defines.
  std::set<std::string> Summarize(const std::string& file);

  CXIndex index_;
  InspectOptions options_;
  std::vector<std::string> files_;
  std::map<std::string, std::string> texts_;  // file -> its text, read when first searched
  std::set<std::string> loaded_;              // files whose summaries are known (or failed)
  std::map<std::string, FunctionSummary> summaries_;
  std::map<std::string, std::string> summary_file_;  // USR -> the file defining it
  std::vector<std::set<std::string>> deps_;          // per file being summarized: files used
};

}  // namespace sluice::inspect::internal
