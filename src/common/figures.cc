// Numbers in sentences.
#include "sluice/common/figures.h"

#include <cmath>

#include <fmt/format.h>

namespace sluice {

std::string Num(double value) {
  if (!std::isfinite(value)) return value > 0 ? "unbounded" : "undefined";
  const double a = std::abs(value);
  if (a == 0) return "0";
  std::string s;
  if (a >= 100) {
    s = fmt::format("{:.0f}", value);
  } else if (a >= 10) {
    s = fmt::format("{:.1f}", value);
  } else if (a >= 1) {
    s = fmt::format("{:.2f}", value);
  } else {
    s = fmt::format("{:.3g}", value);
  }
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string Duration(double seconds) {
  const double a = std::abs(seconds);
  if (a == 0) return "0 ms";
  if (a >= 1) return Num(seconds) + " s";
  if (a >= 1e-3) return Num(seconds * 1e3) + " ms";
  if (a >= 1e-6) return Num(seconds * 1e6) + " µs";
  return Num(seconds * 1e9) + " ns";
}

std::string Bytes(double bytes) {
  const double a = std::abs(bytes);
  if (a >= 1e9) return Num(bytes / 1e9) + " GB";
  if (a >= 1e6) return Num(bytes / 1e6) + " MB";
  if (a >= 1e3) return Num(bytes / 1e3) + " kB";
  return Num(bytes) + " B";
}

std::string Percent(double fraction) {
  const double p = 100 * fraction;
  return std::abs(p) >= 10 || p == 0 ? fmt::format("{:.0f}%", p) : fmt::format("{:.1f}%", p);
}

std::string Quoted(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) s += i + 1 == names.size() ? " and " : ", ";
    s += "'" + names[i] + "'";
  }
  return s;
}

std::string Plural(const std::string& noun) {
  if (noun.ends_with("ch") || noun.ends_with("s")) return noun + "es";
  return noun + "s";
}

}  // namespace sluice
