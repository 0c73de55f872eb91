// Small string helpers shared by modules: suggestions for misspelt names, text positions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Levenshtein distance between `a` and `b`.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `name` within `max_distance` edits (and at most half of `name`'s
// length), or "" when none is that close.
std::string ClosestMatch(std::string_view name, const std::vector<std::string>& candidates,
                         size_t max_distance = 2);

// 1-based line and column of byte offset `byte` (0-based) in `text`, for syntax errors.
struct TextPosition {
  size_t line = 1;
  size_t column = 1;
};
TextPosition PositionOf(std::string_view text, size_t byte);

}  // namespace sluice
