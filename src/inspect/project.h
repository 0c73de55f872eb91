// The project's other translation units, for calls the inspector cannot follow within a file:
// every source in the build's compile_commands.json that defines a called function is parsed
// once and summarized (what each function it defines writes among its parameters, statics and
// globals; whether it draws randomness, uses the clock as data, does I/O), summaries compose
// bottom-up, and they are cached by file and modification time (cache.h).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "inspect/cache.h"
#include "inspect/clang_api.h"
#include "inspect/prelude.h"
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
  // Reads `options.build_dir`/compile_commands.json (which must exist). `prelude`: the
  // precompiled system headers parses may load (null: none); it outlives the project.
  Project(CXIndex index, const InspectOptions& options, Prelude* prelude = nullptr);

  // The summary of the function with USR `usr`, called `name` (`Class::name` for a method),
  // from the project file that defines it; null when no project file does.
  // `from`: the caller's file, which is not searched.
  const FunctionSummary* Find(const std::string& usr, const std::string& name,
                              const std::string& from);

  // Where a file to summarize may already be parsed (the files being inspected, parse_ahead.h):
  // `borrow` returns its unit (which stays valid through the summary) or null to parse it here.
  void BorrowUnitsFrom(std::function<CXTranslationUnit(const std::string& file)> borrow) {
    borrow_ = std::move(borrow);
  }

  // Between the two, the files whose summaries Find returned, and the files those were made
  // from: what an inspection that used them depends on. Nests.
  void BeginUses();
  std::set<std::string> EndUses();

 private:
  // Makes the summaries of `file` known: from the cache when it is current, else parsed.
  void Load(const std::string& file);
  bool LoadCache(const std::string& file);
  void SaveCache(const std::string& file, const std::set<std::string>& usrs) const;
  // Parses `file` and summarizes every function it defines.
  std::set<std::string> Summarize(const std::string& file);

  CXIndex index_;
  InspectOptions options_;
  Prelude* prelude_;
  std::function<CXTranslationUnit(const std::string&)> borrow_;
  std::vector<std::string> files_;
  std::map<std::string, std::string> texts_;  // file -> its text, read when first searched
  std::set<std::string> loaded_;              // files whose summaries are known (or failed)
  std::map<std::string, FunctionSummary> summaries_;
  std::map<std::string, std::string> summary_file_;  // USR -> the file defining it
  // File -> the files its summaries were made from (itself, and those of the summaries used).
  std::map<std::string, std::set<std::string>> file_deps_;
  std::vector<std::set<std::string>> uses_;  // see BeginUses
  Cache cache_;
};

}  // namespace sluice::inspect::internal
