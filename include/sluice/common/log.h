// The one sink for library warnings: library code never prints; the CLI and the Python package
// route what it says.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace sluice {

// Receives one warning's text, without a "sluice: warning: " prefix or a newline.
using WarningSink = std::function<void(std::string_view message)>;

// Hands `message` to the warning sink; by default it goes to stderr as
// "sluice: warning: <message>\n". Thread-safe.
void Warn(std::string_view message);

template <typename... Args>
void Warn(fmt::format_string<Args...> format, Args&&... args) {
  Warn(std::string_view(fmt::format(format, std::forward<Args>(args)...)));
}

// Replaces the warning sink (an empty function restores the default) and returns the one it
// replaces. Thread-safe; a sink must not call SetWarningSink itself.
WarningSink SetWarningSink(WarningSink sink);

}  // namespace sluice
