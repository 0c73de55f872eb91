// The races pass: in an op declared parallelizable, writes that Process makes to state its
// workers share (members, statics, globals) with no lock held and not on an atomic, as evidence
// of a data race.
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {

bool OpAnalyzer::TakesLock(int stmt) const {
  // A lock guard declared in the statement, or `mu_.lock()` called by it.
  std::vector<int> todo = {stmt};
  for (int depth = 0; depth < 3 && !todo.empty(); ++depth) {
    std::vector<int> next;
    for (int id : todo) {
      const CXCursorKind k = KindOf(id);
      if (k == CXCursor_VarDecl && IsLockType(TypeSpelling(clang_getCursorType(Cur(id))))) {
        return true;
      }
      if (k == CXCursor_CallExpr) {
        CXCursor callee = clang_getCursorReferenced(Cur(id));
        const std::string cls = Spelling(clang_getCursorSemanticParent(callee));
        if (Has(kLockMethods, Spelling(callee)) && cls.find("mutex") != std::string::npos) {
          return true;
        }
        if (IsLockType(TypeSpelling(clang_getCursorType(Cur(id))))) return true;
        continue;  // a lock taken inside a call's arguments is not held after it
      }
      next.insert(next.end(), nodes_[id].children.begin(), nodes_[id].children.end());
    }
    todo = std::move(next);
  }
  return false;
}

bool OpAnalyzer::IsLocked(int id) const {
  if (functions_[nodes_[id].function].locked) return true;
  int child = id;
  for (int p = nodes_[id].parent; p >= 0; child = p, p = nodes_[p].parent) {
    if (KindOf(p) != CXCursor_CompoundStmt) continue;
    for (int s : nodes_[p].children) {
      if (s == child) break;
      if (TakesLock(s)) return true;
    }
  }
  return false;
}

void OpAnalyzer::FindRaces() {
  // Only Process runs on several workers at once; a declaration that depends on args counts as
  // parallelizable (some configuration gives it workers).
  const DeclaredValue& d = report_.declared_parallelizable;
  if (!d.found || (d.value.has_value() && !*d.value)) return;
  constexpr const char* kWhy = "{} with no lock held: workers running Process at once race on it";
  for (const SharedWrite& w : shared_writes_) {
    if (w.synced || w.node >= process_end_ || IsLocked(w.node)) continue;
    AddEvidence(Property::kRace, w.node, fmt::format(kWhy, w.what));
  }
  // Writes to statics and globals in other files of the project, through a call made here.
  for (const ExternalRace& r : external_races_) {
    if (r.call >= process_end_ || IsLocked(r.call)) continue;
    AddEvidenceAt(Property::kRace, r.effect.file, r.effect.line, fmt::format(kWhy, r.effect.what),
                  GuardsOf(r.call));
  }
}

}  // namespace sluice::inspect::internal
