// The state pass: writes to members, statics, globals and thread_locals, and locks taken, as
// evidence against `stateless`.
#include <string>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {

void OpAnalyzer::RecordWrite(int target, int at, const std::string& verb) {
  const Root r = RootOf(target);
  if (r.ref_node >= 0) write_refs_.insert(r.ref_node);
  switch (r.kind) {
    case RootKind::kMember: {
      const std::string usr = Usr(r.decl);
      written_.insert(usr);
      const bool store = verb == "assigns" || verb == "calls non-const store() on";
      member_writes_.push_back({usr, at, fmt::format("{} member '{}'", verb, RootName(r)), store});
      break;
    }
    case RootKind::kStatic:
      written_.insert(Usr(r.decl));
      AddEvidence(Property::kStateless, at, fmt::format("{} static '{}'", verb, RootName(r)));
      break;
    case RootKind::kGlobal:
      written_.insert(Usr(r.decl));
      AddEvidence(Property::kStateless, at, fmt::format("{} global '{}'", verb, RootName(r)));
      break;
    case RootKind::kThreadLocal: {
      // A thread_local number is a per-worker counter: state. A thread_local object (a
      // scratch buffer, a library handle) is taken as per-worker scratch (docs/inspect.md).
      const CXTypeKind tk = clang_getCanonicalType(clang_getCursorType(r.decl)).kind;
      if ((tk >= CXType_Bool && tk <= CXType_LongDouble) || tk == CXType_Enum ||
          tk == CXType_Pointer) {
        written_.insert(Usr(r.decl));
        AddEvidence(Property::kStateless, at,
                    fmt::format("{} thread_local '{}' (per-worker state)", verb, RootName(r)));
      }
      break;
    }
    default:
      break;
  }
}

void OpAnalyzer::FindWrites() {
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    const CXCursorKind k = KindOf(i);
    const auto& kids = nodes_[i].children;
    if (k == CXCursor_BinaryOperator && !kids.empty() && OperatorOf(i) == "=") {
      RecordWrite(kids[0], i, "assigns");
      if (kids.size() > 1) assigned_[RootKey(kids[0])].push_back(kids[1]);
    } else if (k == CXCursor_CompoundAssignOperator && !kids.empty()) {
      RecordWrite(kids[0], i, "updates");
      if (kids.size() > 1) assigned_[RootKey(kids[0])].push_back(kids[1]);
    } else if (k == CXCursor_UnaryOperator && !kids.empty()) {
      const std::string op = OperatorOf(i);
      if (op == "++" || op == "--") {
        RecordWrite(kids[0], i, op == "++" ? "increments" : "decrements");
      }
    } else if (k == CXCursor_CallExpr) {
      CheckCall(i);
    } else if (k == CXCursor_VarDecl) {
      const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
      if (IsLockType(t)) {
        AddEvidence(Property::kStateless, i,
                    fmt::format("takes a lock ({})", t.substr(0, t.find('<'))));
      }
    }
  }
  // An atomic member that processing code only ever writes (a sink that keeps a computation
  // from being optimized away) carries nothing from one element to the next.
  for (const auto& w : member_writes_) {
    if (WriteOnlyAtomic(w.usr)) continue;
    AddEvidence(Property::kStateless, w.node, w.what);
  }
}

std::string OpAnalyzer::RootKey(int target) const {
  const Root r = RootOf(target);
  return r.kind == RootKind::kOther ? "" : Usr(r.decl);
}

bool OpAnalyzer::WriteOnlyAtomic(const std::string& usr) const {
  auto it = refs_.find(usr);
  if (it == refs_.end()) return false;
  CXCursor decl = clang_getCursorReferenced(Cur(it->second.front()));
  if (!StartsWith(TypeSpelling(clang_getCursorType(decl)), "std::atomic<")) return false;
  for (int ref : it->second) {
    if (!write_refs_.contains(ref)) return false;
  }
  for (const MemberWrite& w : member_writes_) {
    if (w.usr == usr && !w.store) return false;  // fetch_add, ++: the old value is read
  }
  return true;
}

void OpAnalyzer::CheckCall(int i) {
  CXCursor callee = clang_getCursorReferenced(Cur(i));
  const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
  if (IsLockType(t)) {
    AddEvidence(Property::kStateless, i,
                fmt::format("takes a lock ({})", t.substr(0, t.find('<'))));
    return;
  }
  if (clang_getCursorKind(callee) != CXCursor_CXXMethod) return;
  const std::string name = Spelling(callee);
  const std::string cls = Spelling(clang_getCursorSemanticParent(callee));
  if (Has(kLockMethods, name) && cls.find("mutex") != std::string::npos) {
    AddEvidence(Property::kStateless, i, fmt::format("takes a lock ({}::{})", cls, name));
    return;
  }
  if (clang_CXXMethod_isConst(callee) || clang_CXXMethod_isStatic(callee)) return;
  if (Has(kAccessors, name) || name == "operator=") {
    if (name == "operator=") RecordWrite(ObjectOf(i), i, "assigns");
    return;
  }
  const int object = ObjectOf(i);
  if (object < 0) return;  // a call on `this`: followed into the method itself
  RecordWrite(object, i, fmt::format("calls non-const {}() on", name));
}

}  // namespace sluice::inspect::internal
