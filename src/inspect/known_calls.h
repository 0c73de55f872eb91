// The calls and types the inspector knows by name: random sources, clocks, I/O, sleeps, locks
// and accessors of the standard and C libraries (docs/inspect.md lists them), and the matchers
// over them.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace sluice::inspect::internal {

// C library random sources.
extern const std::set<std::string> kCRandom;
// C library clocks.
extern const std::set<std::string> kCClocks;
// The runtime's clocks (sluice/common/clock.h).
extern const std::set<std::string> kSluiceClocks;
// C library and POSIX I/O calls.
extern const std::set<std::string> kCIo;
// Calls that wait: a clock reading passed to them is timing, not data.
extern const std::set<std::string> kSleeps;
// Methods of a mutex that take it.
extern const std::set<std::string> kLockMethods;
// Non-const member functions that only hand out access; what is done with the result decides
// whether the member is written (`v_[i] = x` writes, `x = v_[i]` reads).
extern const std::set<std::string> kAccessors;

// Calls that hand out access to their argument without writing it (std::move, std::begin,
// std::get): what the caller does with the result decides.
extern const std::set<std::string> kPassThrough;
// Algorithms that write through every iterator they are given (std::shuffle, std::sort, ...).
extern const std::set<std::string> kRangeWriters;
// Algorithms that write through their output iterator (std::copy's last argument, ...).
extern const std::set<std::string> kOutputWriters;

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.starts_with(prefix);
}

template <typename Set>
bool Has(const Set& set, const std::string& key) {
  return set.find(key) != set.end();
}

// Whether canonical type spelling `t` is a standard random engine, a lock guard, or a file
// stream or directory iterator.
bool IsEngineType(const std::string& t);
bool IsLockType(const std::string& t);
bool IsFileStreamType(const std::string& t);

}  // namespace sluice::inspect::internal
