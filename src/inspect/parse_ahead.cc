// Parsing the inspected files ahead of their analysis (parse_ahead.h).
#include "inspect/parse_ahead.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "inspect/parse.h"

namespace sluice::inspect::internal {

ParseAhead::ParseAhead(std::vector<std::string> files, const InspectOptions& options,
                       Prelude* prelude, size_t threads, size_t ahead)
    : files_(std::move(files)),
      options_(options),
      prelude_(prelude),
      ahead_(std::max<size_t>(ahead, 1)) {
  for (size_t i = 0; i < files_.size(); ++i) {
    std::error_code ec;
    const std::filesystem::path p =
        std::filesystem::weakly_canonical(std::filesystem::absolute(files_[i]), ec);
    index_of_.emplace(ec ? files_[i] : p.string(), i);
  }
  {
    MutexLock lock(mu_);
    done_.resize(files_.size());
    failed_.resize(files_.size());
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
    auto parsed = std::make_unique<ParsedUnit>();
    std::exception_ptr error;
    try {
      parsed->index.reset(ClangCheck(clang_createIndex(0, 0), "creating an index"));
      parsed->unit = Parse(parsed->index.get(), files_[i], options_, prelude_);
    } catch (...) {
      error = std::current_exception();
      parsed.reset();
    }
    {
      MutexLock lock(mu_);
      done_[i] = std::move(parsed);
      failed_[i] = error;
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
    while (!done_[i] && !failed_[i]) changed_.Wait(mu_);
    if (failed_[i]) std::rethrow_exception(failed_[i]);
    out = std::move(done_[i]);
  }
  return out;
}

CXTranslationUnit ParseAhead::Borrow(const std::string& file) {
  const auto it = index_of_.find(file);
  if (it == index_of_.end()) return nullptr;
  const size_t i = it->second;
  MutexLock lock(mu_);
  if (i < taken_ || i >= taken_ + ahead_) return nullptr;
  while (!done_[i] && !failed_[i]) changed_.Wait(mu_);
  return done_[i] ? done_[i]->unit.get() : nullptr;
}

}  // namespace sluice::inspect::internal
