// The I/O pass: file streams, std::filesystem and the C library's I/O calls, as evidence of `io`.
#include <string>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {

void OpAnalyzer::FindIo() {
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    const CXCursorKind k = KindOf(i);
    if (k == CXCursor_VarDecl || k == CXCursor_CallExpr) {
      const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
      if (IsFileStreamType(t)) {
        AddEvidence(Property::kIo, i, fmt::format("opens {}", t.substr(0, t.find('<'))));
        continue;
      }
    }
    if (k != CXCursor_CallExpr) continue;
    CXCursor callee = clang_getCursorReferenced(Cur(i));
    if (clang_getCursorKind(callee) != CXCursor_FunctionDecl || !InSystemHeader(callee)) continue;
    const std::string name = Spelling(callee);
    const std::string scope = Scope(callee);
    if (scope.find("filesystem") != std::string::npos && !StartsWith(name, "operator")) {
      AddEvidence(Property::kIo, i, fmt::format("calls std::filesystem::{}()", name));
    } else if (Has(kCIo, name) && (scope.empty() || scope == "std")) {
      AddEvidence(Property::kIo, i, fmt::format("calls {}()", name));
    }
  }
}

}  // namespace sluice::inspect::internal
