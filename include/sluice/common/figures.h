// Numbers in sentences: three significant figures, durations, byte counts, percentages and
// lists of names, the way every message and report of sluice writes them.
#pragma once

#include <string>
#include <vector>

namespace sluice {

// Three significant figures without trailing zeros ("243", "4.1", "0.0123"); "unbounded" for
// +infinity, "undefined" for NaN or -infinity.
std::string Num(double value);
// "1.5 s", "4.1 ms", "57.6 µs", "12 ns".
std::string Duration(double seconds);
// "1.2 GB", "24 MB", "83.6 kB", "12 B" (powers of 1000).
std::string Bytes(double bytes);
// "73%", "4.5%".
std::string Percent(double fraction);
// "'a'", "'a' and 'b'", "'a', 'b' and 'c'".
std::string Quoted(const std::vector<std::string>& names);
// "batch" -> "batches", "output" -> "outputs".
std::string Plural(const std::string& noun);

}  // namespace sluice
