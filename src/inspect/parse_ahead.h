// The files an inspection analyzes, parsed ahead of the analysis on threads of their own. The
// analysis takes them in order; the threads keep parsing up to a bound ahead of it, so they go on
// working while the analysis follows a call into the project (which parses that file on the
// analysis's thread). A followed file that is also being inspected is borrowed from here instead
// of parsed a second time.
#pragma once

#include <cstddef>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "inspect/clang_api.h"
#include "inspect/prelude.h"
#include "sluice/inspect/inspect.h"

namespace sluice::inspect::internal {

// A unit with the index that owns it (destroyed after it).
struct ParsedUnit {
  IndexPtr index;
  UnitPtr unit;
};

class ParseAhead {
 public:
  // Starts `threads` threads parsing `files` in order, at most `ahead` files past the last one
  // taken. `options` and `prelude` (null: none) outlive the object.
  ParseAhead(std::vector<std::string> files, const InspectOptions& options, Prelude* prelude,
             size_t threads, size_t ahead);
  // Waits for the parses under way (no new one starts).
  ~ParseAhead();
  ParseAhead(const ParseAhead&) = delete;
  ParseAhead& operator=(const ParseAhead&) = delete;

  // The parse of files[i], once done; it is the caller's then. Rethrows the parse's error.
  // Indices are taken in increasing order.
  std::unique_ptr<ParsedUnit> Take(size_t i);

  // The unit of `file` (an absolute, canonical path) when it is one of the files, not taken yet
  // and within the bound (so its parse comes without waiting for a later Take): waits for its
  // parse, and the unit stays here for its Take. Null otherwise, or when its parse failed.
  CXTranslationUnit Borrow(const std::string& file);

 private:
  void Work();

  const std::vector<std::string> files_;
  std::map<std::string, size_t> index_of_;  // canonical path -> first index
  const InspectOptions& options_;
  Prelude* prelude_;
  const size_t ahead_;
  Mutex mu_;
  CondVar changed_;
  size_t next_ SLUICE_GUARDED_BY(mu_) = 0;   // the next file to parse
  size_t taken_ SLUICE_GUARDED_BY(mu_) = 0;  // files before it were taken
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  // A file's parse once done: its unit, or the error it failed with.
  struct Slot {
    std::unique_ptr<ParsedUnit> parsed;
    std::exception_ptr error;
    bool done() const { return parsed || error; }
  };
  std::vector<Slot> slots_ SLUICE_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace sluice::inspect::internal
