// ApplyTuned and a small line-based unified diff (configs are small: LCS over lines is enough).
#include "sluice/config/merge.h"

#include <algorithm>

#include <fmt/format.h>

#include "sluice/common/error.h"

namespace sluice::config {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size() - 1;
    lines.push_back(text.substr(start, nl - start + 1));
    start = nl + 1;
  }
  return lines;
}

std::string KnobText(const StageSpec& s, std::string_view knob) {
  if (knob == kKnobParallelism) return std::to_string(s.parallelism.value_or(1));
  if (knob == kKnobBufferSize) return std::to_string(s.buffer_size.value_or(0));
  return s.deterministic.value_or(true) ? "true" : "false";
}

}  // namespace

std::vector<AppliedChange> ApplyTuned(const Document& tuned, Document& target) {
  std::vector<AppliedChange> changes;
  // Cache stages the tuner inserted, placed after the stage that precedes them in `tuned`.
  for (size_t i = 0; i < tuned.stages().size(); ++i) {
    const StageSpec& t = tuned.stages()[i];
    const bool exists = std::any_of(target.stages().begin(), target.stages().end(),
                                    [&](const StageSpec& s) { return s.name == t.name; });
    if (exists) continue;
    if (t.op != "cache") {
      Fail(
          "{}: stage '{}' ({}) is not in {}: apply a tuned config to the config it was tuned "
          "from",
          tuned.origin().string(), t.name, t.op, target.origin().string());
    }
    size_t at = 0;
    if (i > 0) {
      const StageSpec& before = target.Stage(tuned.stages()[i - 1].name);
      at = before.index + 1;
    }
    target.InsertStage(at, tuned.json()["stages"][i]);
    changes.push_back({t.name, fmt::format("inserted a cache stage after stage #{}", at)});
  }
  for (const StageSpec& t : tuned.stages()) {
    const StageSpec& s = target.Stage(t.name);
    if (s.op != t.op) {
      Fail("{}: stage '{}' is op '{}' there but '{}' in {}", target.origin().string(), t.name, s.op,
           t.op, tuned.origin().string());
    }
    const Json& tj = tuned.json()["stages"][t.index];
    for (std::string_view knob : {kKnobParallelism, kKnobBufferSize, kKnobDeterministic}) {
      const std::string from = KnobText(s, knob), to = KnobText(t, knob);
      if (from == to || !tj.contains(std::string(knob))) continue;
      target.SetKnob(t.name, knob, tj[std::string(knob)]);
      changes.push_back({t.name, fmt::format("{} {} -> {}", knob, from, to)});
    }
  }
  return changes;
}

std::string UnifiedDiff(const std::string& before, const std::string& after,
                        const std::string& name) {
  if (before == after) return "";
  const std::vector<std::string> a = Lines(before), b = Lines(after);
  const size_t n = a.size(), m = b.size();
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  struct Op {
    char kind;  // ' ', '-', '+'
    size_t ai, bi;
  };
  std::vector<Op> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', i++, j++});
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push_back({'-', i++, j});  // deletions first, as diff -u shows them
    } else {
      ops.push_back({'+', i, j++});
    }
  }
  std::string out = fmt::format("--- {}\n+++ {} (tuned)\n", name, name);
  constexpr size_t kContext = 3;
  size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].kind == ' ') {
      ++k;
      continue;
    }
    // A hunk: from kContext lines before this change to kContext lines after the last change
    // that is within 2 * kContext of the next.
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t quiet = 0;
    for (size_t x = k; x < ops.size(); ++x) {
      if (ops[x].kind != ' ') {
        end = x;
        quiet = 0;
      } else if (++quiet > 2 * kContext) {
        break;
      }
    }
    size_t stop = std::min(ops.size(), end + 1 + kContext);
    size_t a_count = 0, b_count = 0;
    for (size_t x = start; x < stop; ++x) {
      if (ops[x].kind != '+') ++a_count;
      if (ops[x].kind != '-') ++b_count;
    }
    out += fmt::format("@@ -{},{} +{},{} @@\n", ops[start].ai + 1, a_count, ops[start].bi + 1,
                       b_count);
    for (size_t x = start; x < stop; ++x) {
      const std::string& line = ops[x].kind == '+' ? b[ops[x].bi] : a[ops[x].ai];
      out += ops[x].kind;
      out += line;
      if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
    }
    k = stop;
  }
  return out;
}

}  // namespace sluice::config
