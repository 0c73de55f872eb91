// The one exception type sluice modules throw; `main` prints it as "sluice: <message>".
// Messages read "<where>: <what went wrong>", the file, stage and key first, as a compiler puts
// file:line first: "cfg/p.json: stage 'map': key 'parallelism': expected an integer from 1 to
// 1024, got 0".
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace sluice {

// An error a user can act on: the message names the file, stage and key involved.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws sluice::Error with a fmt-formatted message. Out of line so call sites stay small.
[[noreturn]] void ThrowError(const std::string& message);

template <typename... Args>
[[noreturn]] void Fail(fmt::format_string<Args...> format, Args&&... args) {
  ThrowError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sluice
