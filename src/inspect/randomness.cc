// The randomness pass: random sources, engines and their seeds, and the clock used as data, as
// evidence against `deterministic`.
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {

namespace {

std::string StripConstRef(std::string t) {
  if (StartsWith(t, "const ")) t = t.substr(6);
  while (!t.empty() && (t.back() == '&' || t.back() == ' ' || t.back() == '*')) t.pop_back();
  return t;
}

}  // namespace

std::optional<std::string> OpAnalyzer::Varies(CXCursor c, std::set<std::string>& seen) const {
  const CXCursorKind k = clang_getCursorKind(c);
  if (k == CXCursor_DeclRefExpr || k == CXCursor_MemberRefExpr) {
    CXCursor ref = clang_getCursorReferenced(c);
    const std::string name = Spelling(ref);
    const CXCursorKind rk = clang_getCursorKind(ref);
    if (name == "epoch" && (rk == CXCursor_ParmDecl || rk == CXCursor_FieldDecl)) {
      return std::string("the epoch");
    }
    const std::string usr = Usr(ref);
    if ((rk == CXCursor_FieldDecl || rk == CXCursor_VarDecl) && written_.contains(usr)) {
      return fmt::format("'{}', which processing code updates", name);
    }
    if (rk == CXCursor_VarDecl && seen.insert(usr).second) {
      for (CXCursor kid : Children(ref)) {
        if (IsExpr(clang_getCursorKind(kid))) {
          if (auto why = Varies(kid, seen)) return why;
        }
      }
      if (auto it = assigned_.find(usr); it != assigned_.end()) {
        for (int rhs : it->second) {
          if (auto why = Varies(Cur(rhs), seen)) return why;
        }
      }
    }
  }
  if (k == CXCursor_CallExpr) {
    CXCursor callee = clang_getCursorReferenced(c);
    const std::string name = Spelling(callee);
    if ((Has(kCRandom, name) || Has(kCClocks, name)) && InSystemHeader(callee)) {
      return fmt::format("{}()", name);
    }
    if (Has(kSluiceClocks, name) ||
        (name == "now" && Scope(callee).find("chrono") != std::string::npos)) {
      return std::string("the clock");
    }
  }
  if (IsExpr(k) && TypeSpelling(clang_getCursorType(c)) == "std::random_device") {
    return std::string("std::random_device");
  }
  for (CXCursor kid : Children(c)) {
    if (auto why = Varies(kid, seen)) return why;
  }
  return std::nullopt;
}

void OpAnalyzer::FindRandomness() {
  std::set<std::string> engines_reported;
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    const CXCursorKind k = KindOf(i);
    if ((k == CXCursor_CallExpr || k == CXCursor_VarDecl) &&
        TypeSpelling(clang_getCursorType(Cur(i))) == "std::random_device") {
      AddEvidence(Property::kDeterministic, i, "draws from std::random_device");
      continue;
    }
    if (k == CXCursor_DeclRefExpr || k == CXCursor_MemberRefExpr) {
      CXCursor ref = clang_getCursorReferenced(Cur(i));
      if (IsEngineType(StripConstRef(TypeSpelling(clang_getCursorType(ref))))) EngineUse(i, ref);
      continue;
    }
    if (k != CXCursor_CallExpr) continue;
    CXCursor callee = clang_getCursorReferenced(Cur(i));
    const std::string name = Spelling(callee);
    const CXCursorKind ck = clang_getCursorKind(callee);
    if (Has(kCRandom, name) && ck == CXCursor_FunctionDecl && InSystemHeader(callee)) {
      AddEvidence(Property::kDeterministic, i, fmt::format("calls {}()", name));
    } else if (name == "MixSeed" && !FromMainFile(callee)) {
      for (int arg : nodes_[i].children) {
        if (KindOf(arg) == CXCursor_DeclRefExpr && Spelling(Cur(arg)) == "MixSeed") continue;
        std::set<std::string> seen;
        if (auto why = Varies(Cur(arg), seen)) {
          AddEvidence(Property::kDeterministic, i,
                      fmt::format("seeds the runtime's RNG (MixSeed) from {}, not from the "
                                  "element alone",
                                  *why));
          break;
        }
      }
    } else if ((Has(kCClocks, name) && ck == CXCursor_FunctionDecl && InSystemHeader(callee)) ||
               (Has(kSluiceClocks, name) && !FromMainFile(callee)) ||
               (name == "now" && Scope(callee).find("chrono") != std::string::npos)) {
      ClockCall(i, name);
    }
  }
}

void OpAnalyzer::EngineUse(int i, CXCursor engine) {
  const Root r = ClassifyVar(engine, i);
  const std::string name = Spelling(engine);
  switch (r.kind) {
    case RootKind::kMember:
      AddEvidence(Property::kDeterministic, i,
                  fmt::format("draws from member engine '{}', whose state carries over from "
                              "element to element and epoch to epoch",
                              name));
      break;
    case RootKind::kStatic:
    case RootKind::kGlobal:
      AddEvidence(Property::kDeterministic, i,
                  fmt::format("draws from {} engine '{}', whose state carries over between "
                              "elements and epochs",
                              r.kind == RootKind::kStatic ? "static" : "global", name));
      break;
    case RootKind::kThreadLocal:
      AddEvidence(Property::kDeterministic, i,
                  fmt::format("draws from thread_local engine '{}', whose state depends on the "
                              "worker thread and carries over between epochs",
                              name));
      break;
    case RootKind::kLocal: {
      // A local engine is as deterministic as its seed: its initializer and any seed() call.
      std::set<std::string> seen;
      std::optional<std::string> why;
      for (CXCursor kid : Children(engine)) {
        if (!why && IsExpr(clang_getCursorKind(kid))) why = Varies(kid, seen);
      }
      if (!why) {
        for (int ref : refs_[Usr(engine)]) {
          const int member = nodes_[ref].parent;
          if (member < 0 || KindOf(member) != CXCursor_MemberRefExpr ||
              Spelling(Cur(member)) != "seed" || nodes_[member].parent < 0) {
            continue;
          }
          why = Varies(Cur(nodes_[member].parent), seen);
          if (why) break;
        }
      }
      if (why) {
        AddEvidence(Property::kDeterministic, i,
                    fmt::format("draws from engine '{}' seeded from {}", name, *why));
      }
      break;
    }
    default:
      break;
  }
}

void OpAnalyzer::ClockCall(int call, const std::string& name) {
  std::set<std::string> seen;
  bool data = false;
  if (name == "clock_gettime" || name == "gettimeofday" || name == "timespec_get" ||
      name == "time") {
    // The reading lands in an out-parameter: follow that variable.
    for (int arg : nodes_[call].children) {
      const Root r = RootOf(arg);
      if (r.kind == RootKind::kOther || r.kind == RootKind::kParam) continue;
      if (UsesAsData(Usr(r.decl), call, seen)) data = true;
    }
    if (name == "time" && ValueIsData(call, seen)) data = true;
  } else {
    data = ValueIsData(call, seen);
  }
  if (data) {
    AddEvidence(Property::kDeterministic, call,
                fmt::format("uses the clock ({}) as data, not only for timing", name));
  }
}

bool OpAnalyzer::IsInside(int id, int ancestor) const {
  for (int p = id; p >= 0; p = nodes_[p].parent) {
    if (p == ancestor) return true;
  }
  return false;
}

bool OpAnalyzer::UsesAsData(const std::string& usr, int except, std::set<std::string>& seen) const {
  if (!seen.insert(usr).second) return false;
  auto it = refs_.find(usr);
  if (it == refs_.end()) return false;
  for (int ref : it->second) {
    if (write_refs_.contains(ref) || IsInside(ref, except)) continue;
    if (ValueIsData(ref, seen)) return true;
  }
  return false;
}

bool OpAnalyzer::ValueIsData(int id, std::set<std::string>& seen) const {
  int cur = id;
  for (int p = nodes_[cur].parent; p >= 0; cur = p, p = nodes_[p].parent) {
    const CXCursorKind k = KindOf(p);
    switch (k) {
      case CXCursor_UnexposedExpr:
      case CXCursor_ParenExpr:
      case CXCursor_CStyleCastExpr:
      case CXCursor_CXXStaticCastExpr:
      case CXCursor_CXXFunctionalCastExpr:
      case CXCursor_MemberRefExpr:
        continue;
      case CXCursor_CallExpr: {
        CXCursor callee = clang_getCursorReferenced(Cur(p));
        const std::string name = Spelling(callee);
        if (Has(kSleeps, name)) return false;
        if (name == "operator<" || name == "operator>" || name == "operator<=" ||
            name == "operator>=" || name == "operator==" || name == "operator!=" ||
            name == "operator<=>") {
          return false;  // a comparison (C++20 rewrites `a < b` into operator<=>)
        }
        const int first = nodes_[p].children.empty() ? -1 : nodes_[p].children[0];
        if (first == cur && KindOf(cur) == CXCursor_MemberRefExpr) continue;  // x.count()
        if (Scope(callee).find("chrono") != std::string::npos ||
            TypeSpelling(clang_getCursorType(Cur(p))).find("std::chrono::") == 0) {
          continue;  // a duration conversion
        }
        return true;
      }
      case CXCursor_BinaryOperator: {
        const std::string op = OperatorOf(p);
        if (op == "<" || op == ">" || op == "<=" || op == ">=" || op == "==" || op == "!=" ||
            op == "&&" || op == "||") {
          return false;
        }
        if (op == "=") {
          if (nodes_[p].children.empty() || nodes_[p].children[0] == cur) return false;
          const Root r = RootOf(nodes_[p].children[0]);
          if (r.kind == RootKind::kOther || r.kind == RootKind::kParam) return true;
          return UsesAsData(Usr(r.decl), -1, seen);
        }
        continue;  // arithmetic
      }
      case CXCursor_CompoundAssignOperator: {
        if (nodes_[p].children.empty() || nodes_[p].children[0] == cur) return false;
        const Root r = RootOf(nodes_[p].children[0]);
        if (r.kind == RootKind::kOther || r.kind == RootKind::kParam) return true;
        return UsesAsData(Usr(r.decl), -1, seen);
      }
      case CXCursor_UnaryOperator:
        if (OperatorOf(p) == "!") return false;
        continue;
      case CXCursor_ConditionalOperator:
        if (!nodes_[p].children.empty() && nodes_[p].children[0] == cur) return false;
        continue;
      case CXCursor_VarDecl:
        return UsesAsData(Usr(Cur(p)), -1, seen);
      case CXCursor_IfStmt:
      case CXCursor_WhileStmt:
      case CXCursor_DoStmt:
      case CXCursor_ForStmt:
      case CXCursor_CompoundStmt:
        return false;  // a condition, or a value thrown away
      default:
        return true;
    }
  }
  return false;
}

}  // namespace sluice::inspect::internal
