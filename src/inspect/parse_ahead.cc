// Parsing the inspected files ahead of their analysis (parse_ahead.h).
#include "inspect/parse_ahead.h"

#include <algorithm>
#include <utility>

#include "inspect/parse.h"

namespace sluice::inspect::internal {

ParseAhead::ParseAhead(std::vector<std::string> files, const InspectOptions& options,
                       Prelude* prelude, size_t threads, size_t ahead)
    : files_(std::move(files)),
      options_(options),
      prelude_(prelude),
      ahead_(std::max<size_t>(ahead, 1)) {
  for (size_t i = 0; i < files_.size(); ++i) index_of_.emplace(CanonicalPath(files_[i]), i);
  {
    MutexLock lock(mu_);
    slots_.resize(files_.size());
  }
  for (size_t t = 0; t < std::min(threads, files_.size()); ++t)
    threads_.emplace_back([this] { Work(); });
}

ParseAhead::~ParseAhead() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  changed_.NotifyAll();
  for (std::thread& t : threads_) t.join();
}

void ParseAhead::Work() {
  for (;;) {
    size_t i = 0;
    {
      MutexLock lock(mu_);
      while (!stop_ && next_ < files_.size() && next_ >= taken_ + ahead_) changed_.Wait(mu_);
      if (stop_ || next_ >= files_.size()) return;
      i = next_++;
    }
    Slot slot;
    try {
      slot.parsed = std::make_unique<ParsedUnit>();
      slot.parsed->index.reset(ClangCheck(clang_createIndex(0, 0), "creating an index"));
      slot.parsed->unit = Parse(slot.parsed->index.get(), files_[i], options_, prelude_);
    } catch (...) {
      slot.error = std::current_exception();
      slot.parsed.reset();
    }
    {
      MutexLock lock(mu_);
      slots_[i] = std::move(slot);
    }
    changed_.NotifyAll();
  }
}

std::unique_ptr<ParsedUnit> ParseAhead::Take(size_t i) {
  std::unique_ptr<ParsedUnit> out;
  {
    MutexLock lock(mu_);
    taken_ = std::max(taken_, i + 1);
    changed_.NotifyAll();  // room for one more parse ahead
    while (!slots_[i].done()) changed_.Wait(mu_);
    if (slots_[i].error) std::rethrow_exception(slots_[i].error);
    out = std::move(slots_[i].parsed);
  }
  return out;
}

CXTranslationUnit ParseAhead::Borrow(const std::string& file) {
  const auto it = index_of_.find(file);
  if (it == index_of_.end()) return nullptr;
  const size_t i = it->second;
  MutexLock lock(mu_);
  if (i < taken_ || i >= taken_ + ahead_) return nullptr;
  while (!slots_[i].done()) changed_.Wait(mu_);
  return slots_[i].parsed ? slots_[i].parsed->unit.get() : nullptr;
}

}  // namespace sluice::inspect::internal
