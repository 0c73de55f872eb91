// The state pass: writes to members, statics, globals and thread_locals, and locks taken, as
// evidence against `stateless`.
#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {
namespace {

bool ConstPointee(CXType t) { return clang_isConstQualifiedType(clang_getPointeeType(t)) != 0; }

// An atomic, a mutex or another synchronization object: workers may share it safely.
bool IsSyncType(CXCursor decl) {
  const std::string t = TypeSpelling(clang_getCursorType(decl));
  for (const char* s :
       {"mutex", "condition_variable", "once_flag", "semaphore", "latch", "barrier"}) {
    if (t.find(s) != std::string::npos) return true;
  }
  return StartsWith(t, "std::atomic");
}

// How a finding names a callee: "std::shuffle()", "Bump()",
// "std::uniform_int_distribution::operator()".
std::string CalleeName(CXCursor callee) {
  std::string name = Spelling(callee);
  if (!StartsWith(name, "operator")) name += "()";
  const CXCursor parent = clang_getCursorSemanticParent(callee);
  const CXCursorKind pk = clang_getCursorKind(parent);
  if (pk == CXCursor_ClassDecl || pk == CXCursor_StructDecl || pk == CXCursor_ClassTemplate) {
    name = Spelling(parent) + "::" + name;
  }
  return StartsWith(Scope(callee), "std") ? "std::" + name : name;
}

// Whether parameter `j` of `callee`, a function template specialization, was declared as a
// forwarding reference (`T&&`, `Args&&...`) in the template.
bool ForwardingParam(CXCursor callee, int j) {
  CXCursor pattern = clang_getSpecializedCursorTemplate(callee);
  if (clang_Cursor_isNull(pattern)) return false;
  const std::vector<CXCursor> params = ParamsOf(pattern);
  if (params.empty()) return false;
  CXCursor p = params[std::min(static_cast<size_t>(j), params.size() - 1)];
  if (static_cast<size_t>(j) >= params.size() &&
      Take(clang_getTypeSpelling(clang_getCursorType(p))).find("...") == std::string::npos) {
    return false;
  }
  return Take(clang_getTypeSpelling(clang_getCursorType(p))).find("&&") != std::string::npos;
}

// Whether `callee` may write through argument `j` of `n`, bound to parameter type `param`
// (`has_param` false: a C variadic argument). `arg_type` is the argument's type; `via_accessor`
// whether it is the result of a call (`v_.begin()`, `v_.data()`).
bool MayWriteThrough(CXCursor callee, CXType param, bool has_param, int j, int n, CXType arg_type,
                     bool via_accessor) {
  if (!has_param || clang_isConstQualifiedType(arg_type) != 0) return false;
  const std::string name = Spelling(callee);
  const CXType t = clang_getCanonicalType(param);
  switch (t.kind) {
    case CXType_LValueReference:
    case CXType_RValueReference:
      if (ConstPointee(t)) return false;
      if (ForwardingParam(callee, j)) {
        // A forwarding reference mostly copies or forwards (emplace_back, fmt::format); an
        // engine passed on is drawn from, and the mutating algorithms write what they get.
        std::string a = TypeSpelling(arg_type);
        while (!a.empty() && (a.back() == '&' || a.back() == ' ')) a.pop_back();
        return IsEngineType(a) || Has(kRangeWriters, name) || Has(kOutputWriters, name);
      }
      return true;  // written through, or moved from
    case CXType_Pointer:
      return !ConstPointee(t);
    default:  // by value: an iterator or a pointer into a member, given to a mutating algorithm
      if (!via_accessor) return false;
      if (Has(kRangeWriters, name)) return true;
      return Has(kOutputWriters, name) && n >= 3 && j == (name == "transform" ? n - 2 : n - 1);
  }
}

}  // namespace

void OpAnalyzer::RecordWrite(int target, int at, const std::string& verb) {
  const Root r = RootOf(target);
  if (r.ref_node >= 0) write_refs_.insert(r.ref_node);
  switch (r.kind) {
    case RootKind::kMember: {
      const std::string usr = Usr(r.decl);
      written_.insert(usr);
      const bool store = verb == "assigns" || verb == "calls non-const store() on";
      std::string what = fmt::format("{} member '{}'", verb, RootName(r));
      shared_writes_.push_back({at, what, IsSyncType(r.decl)});
      member_writes_.push_back({usr, at, std::move(what), store});
      break;
    }
    case RootKind::kStatic:
    case RootKind::kGlobal: {
      written_.insert(Usr(r.decl));
      const std::string what = fmt::format(
          "{} {} '{}'", verb, r.kind == RootKind::kStatic ? "static" : "global", RootName(r));
      shared_writes_.push_back({at, what, IsSyncType(r.decl)});
      AddEvidence(Property::kStateless, at, what);
      break;
    }
    case RootKind::kParam:
      written_params_.insert(ParamKey(r.decl));
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
      CheckArguments(i);
    } else if (k == CXCursor_VarDecl) {
      const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
      if (IsLockType(t)) {
        AddEvidence(Property::kStateless, i,
                    fmt::format("takes a lock ({})", t.substr(0, t.find('<'))));
      }
    }
  }
  ResolveBindings();
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

namespace sluice::inspect::internal {

std::vector<CXCursor> ParamsOf(CXCursor fn) {
  std::vector<CXCursor> params;
  for (CXCursor c : Children(fn)) {
    if (clang_getCursorKind(c) == CXCursor_ParmDecl) params.push_back(c);
  }
  return params;
}

std::string OpAnalyzer::ParamKey(CXCursor parm) const {
  CXCursor fn = clang_getCursorSemanticParent(parm);
  const std::vector<CXCursor> params = ParamsOf(fn);
  for (size_t i = 0; i < params.size(); ++i) {
    if (clang_equalCursors(params[i], parm) != 0 || Usr(params[i]) == Usr(parm)) {
      return fmt::format("{}#{}", Usr(fn), i);
    }
  }
  return Usr(parm);
}

void OpAnalyzer::CheckArguments(int call) {
  CXCursor c = Cur(call);
  CXCursor callee = clang_getCursorReferenced(c);
  const int n = clang_Cursor_getNumArguments(c);
  if (clang_Cursor_isNull(callee) || n <= 0) return;
  const std::string name = Spelling(callee);
  if (n == 1 && Has(kPassThrough, name)) return;
  const CXType fn_type = clang_getCursorType(callee);
  const int n_params = clang_getNumArgTypes(fn_type);
  // A member operator called as an operator (`dist(engine_)`): argument 0 is the object.
  const CXCursorKind parent = clang_getCursorKind(clang_getCursorSemanticParent(callee));
  const bool method = parent == CXCursor_ClassDecl || parent == CXCursor_StructDecl ||
                      parent == CXCursor_ClassTemplate ||
                      parent == CXCursor_ClassTemplatePartialSpecialization;
  const int offset = method && n_params >= 0 && n == n_params + 1 ? 1 : 0;
  CXCursor def = clang_getCursorDefinition(callee);
  const bool followed = !clang_Cursor_isNull(def) && FollowableDefinition(def);
  const size_t n_def_params = followed ? ParamsOf(def).size() : 0;
  for (int a = offset; a < n; ++a) {
    CXCursor arg = clang_Cursor_getArgument(c, static_cast<unsigned>(a));
    int node = -1;
    for (int kid : nodes_[call].children) {
      if (clang_equalCursors(Cur(kid), arg) != 0 ||
          (StartOffset(Cur(kid)) == StartOffset(arg) && EndOffset(Cur(kid)) == EndOffset(arg) &&
           KindOf(kid) == clang_getCursorKind(arg))) {
        node = kid;
      }
    }
    if (node < 0) continue;
    const Root r = RootOf(node);
    if (r.kind == RootKind::kOther || r.kind == RootKind::kLocal) continue;
    const int j = a - offset;
    int inner = node;
    while (KindOf(inner) == CXCursor_UnexposedExpr && FirstExprChild(inner) >= 0) {
      inner = FirstExprChild(inner);
    }
    if (!MayWriteThrough(callee, clang_getArgType(fn_type, static_cast<unsigned>(j)), j < n_params,
                         j, n - offset, clang_getCursorType(arg),
                         KindOf(inner) == CXCursor_CallExpr)) {
      continue;
    }
    std::string param;
    if (followed && static_cast<size_t>(j) < n_def_params) {
      param = fmt::format("{}#{}", Usr(def), j);
    } else if (summarized_.contains(Usr(callee)) && j < n_params) {
      param = fmt::format("{}#{}", Usr(callee), j);  // as its summary says (ApplySummary)
    }
    bindings_.push_back({node, call, std::move(param), CalleeName(callee)});
  }
}

void OpAnalyzer::ResolveBindings() {
  // A parameter passed on to a parameter that is written is written too.
  for (bool changed = true; changed;) {
    changed = false;
    for (const Binding& b : bindings_) {
      if (!b.param.empty() && !written_params_.contains(b.param)) continue;
      const Root r = RootOf(b.arg);
      if (r.kind == RootKind::kParam && written_params_.insert(ParamKey(r.decl)).second) {
        changed = true;
      }
    }
  }
  for (const Binding& b : bindings_) {
    if (!b.param.empty() && !written_params_.contains(b.param)) continue;
    RecordWrite(b.arg, b.call, fmt::format("lets {} write", b.callee));
  }
}

}  // namespace sluice::inspect::internal
