// Small string helpers shared by modules: suggestions for misspelt names.
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

}  // namespace sluice
