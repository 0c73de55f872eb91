// The op analysis: the walk from the entry points through the calls it can follow, the node
// helpers every pass uses (roots of lvalues, guards, operators) and the verdicts.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "inspect/known_calls.h"
#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {

bool FollowableDefinition(CXCursor def) {
  if (FromMainFile(def)) return true;
  if (InSystemHeader(def)) return false;
  CXFile file = nullptr;
  clang_getSpellingLocation(clang_getCursorLocation(def), &file, nullptr, nullptr, nullptr);
  if (file == nullptr) return false;
  CXString name = clang_getFileName(file);
  const std::string path = clang_getCString(name) != nullptr ? clang_getCString(name) : "";
  clang_disposeString(name);
  return path.find("/include/sluice/") == std::string::npos && path.find("include/sluice/") != 0;
}

// The runtime's tensor allocator, taken like `operator new`: it hands out uninitialized memory
// that the op then fills, and its pool's lock orders the hand-outs of buffers, not any value an
// op computes. Followed, it would make every op that allocates a tensor stateful.
static bool IsRuntimeAllocator(CXCursor callee) {
  return clang_getCursorKind(callee) == CXCursor_CXXMethod && Spelling(callee) == "Allocate" &&
         Scope(callee) == "sluice::pipeline::Tensor";
}

void OpAnalyzer::Run() {
  // Process first: what it reaches is what workers run at once (the races pass).
  for (const char* name : {"Process", "Next", "BeginEpoch"}) {
    CXCursor m = FindMethod(name);
    if (!clang_Cursor_isNull(m)) Queue(m, {});
    Drain();
    if (std::string_view(name) == "Process") process_end_ = static_cast<int>(nodes_.size());
  }
  IndexRefs();
  ReadDeclared();
  FindWrites();
  FindRandomness();
  FindIo();
  FindRaces();
  Conclude();
}

void OpAnalyzer::Drain() {
  while (!queue_.empty()) {
    Function f = queue_.front();
    queue_.pop_front();
    Walk(f);
  }
}

void OpAnalyzer::AddClass(CXCursor c) {
  CXCursor def = clang_getCursorDefinition(c);
  if (clang_Cursor_isNull(def)) def = c;
  if (!classes_.insert(Usr(def)).second) return;
  class_defs_.push_back(def);
  for (CXCursor child : Children(def)) {
    if (clang_getCursorKind(child) != CXCursor_CXXBaseSpecifier) continue;
    CXCursor base = clang_getCursorDefinition(clang_getCursorReferenced(child));
    if (!clang_Cursor_isNull(base) && FollowableDefinition(base)) AddClass(base);
  }
}

CXCursor OpAnalyzer::FindMethod(const std::string& name) const {
  for (CXCursor cls : class_defs_) {
    for (CXCursor child : Children(cls)) {
      if (clang_getCursorKind(child) == CXCursor_CXXMethod && Spelling(child) == name) {
        CXCursor def = clang_getCursorDefinition(child);
        if (!clang_Cursor_isNull(def)) return def;
      }
    }
  }
  return clang_getNullCursor();
}

void OpAnalyzer::Queue(CXCursor decl, std::vector<std::string> guards, bool locked) {
  std::string key = Usr(decl) + (locked ? "|locked|" : "|");
  for (const std::string& g : guards) key += g + ",";
  if (!visited_.insert(key).second) return;
  queue_.push_back({decl, std::move(guards), locked});
}

void OpAnalyzer::Walk(const Function& f) {
  functions_.push_back(f);
  const int fn = static_cast<int>(functions_.size()) - 1;
  for (CXCursor child : Children(f.decl)) {
    if (clang_getCursorKind(child) == CXCursor_CompoundStmt) Add(child, -1, fn);
  }
}

int OpAnalyzer::Add(CXCursor c, int parent, int fn) {
  const int id = static_cast<int>(nodes_.size());
  nodes_.push_back({c, parent, fn, {}});
  if (parent >= 0) nodes_[parent].children.push_back(id);
  if (clang_getCursorKind(c) == CXCursor_CallExpr) Follow(id);
  for (CXCursor child : Children(c)) Add(child, id, fn);
  return id;
}

void OpAnalyzer::Follow(int id) {
  CXCursor callee = clang_getCursorReferenced(nodes_[id].cursor);
  if (clang_Cursor_isNull(callee)) return;
  const std::string name = Spelling(callee);
  if (name == "make_unique" || name == "make_shared") {
    // The constructor the factory runs.
    CXType t = clang_getCanonicalType(clang_getCursorType(nodes_[id].cursor));
    CXType arg = clang_Type_getTemplateArgumentAsType(t, 0);
    CXCursor cls = clang_getCursorDefinition(clang_getTypeDeclaration(arg));
    if (!clang_Cursor_isNull(cls) && FromMainFile(cls)) {
      for (CXCursor child : Children(cls)) {
        if (clang_getCursorKind(child) != CXCursor_Constructor) continue;
        CXCursor def = clang_getCursorDefinition(child);
        if (!clang_Cursor_isNull(def)) Queue(def, GuardsOf(id), IsLocked(id));
      }
    }
    return;
  }
  CXCursor def = clang_getCursorDefinition(callee);
  if (IsRuntimeAllocator(callee)) return;  // like operator new: not followed
  if (!clang_Cursor_isNull(def) && FollowableDefinition(def)) {
    const CXCursorKind k = clang_getCursorKind(def);
    if (k == CXCursor_FunctionDecl || k == CXCursor_CXXMethod || k == CXCursor_Constructor ||
        k == CXCursor_FunctionTemplate || k == CXCursor_ConversionFunction) {
      Queue(def, GuardsOf(id), IsLocked(id));
    }
    return;
  }
  if (InSystemHeader(callee)) return;
  const CXCursorKind k = clang_getCursorKind(callee);
  if (k != CXCursor_FunctionDecl && k != CXCursor_CXXMethod && k != CXCursor_FunctionTemplate) {
    return;
  }
  if (Has(kSluiceClocks, name) || name == "MixSeed") return;
  if (project_ != nullptr && clang_Cursor_isNull(def)) {
    // Defined in another file: the project's summary of it, found by the name its definition
    // is written with (`Class::Method(` out of line).
    const std::string needle = k == CXCursor_CXXMethod
                                   ? Spelling(clang_getCursorSemanticParent(callee)) + "::" + name
                                   : name;
    const std::string from = Take(clang_getTranslationUnitSpelling(unit_));
    if (const FunctionSummary* s = project_->Find(Usr(callee), needle, from)) {
      ApplySummary(id, callee, *s);
      return;
    }
  }
  std::string qualified = Scope(callee);
  qualified = qualified.empty() ? name : qualified + "::" + name;
  if (std::find(report_.unresolved_calls.begin(), report_.unresolved_calls.end(), qualified) ==
      report_.unresolved_calls.end()) {
    report_.unresolved_calls.push_back(qualified);
  }
}

int OpAnalyzer::FirstExprChild(int id) const {
  for (int c : nodes_[id].children) {
    if (IsExpr(KindOf(c))) return c;
  }
  return -1;
}

std::string OpAnalyzer::OperatorOf(int id) const {
  const auto& kids = nodes_[id].children;
  if (kids.empty()) return "";
  CXToken* tokens = nullptr;
  unsigned n = 0;
  clang_tokenize(unit_, clang_getCursorExtent(Cur(id)), &tokens, &n);
  std::string op;
  if (KindOf(id) == CXCursor_UnaryOperator) {
    const unsigned child_start = StartOffset(Cur(kids[0]));
    for (unsigned i = 0; i < n; ++i) {
      unsigned offset = 0;
      clang_getExpansionLocation(clang_getTokenLocation(unit_, tokens[i]), nullptr, nullptr,
                                 nullptr, &offset);
      if (clang_getTokenKind(tokens[i]) != CXToken_Punctuation) continue;
      const std::string s = Take(clang_getTokenSpelling(unit_, tokens[i]));
      if (offset < child_start || i + 1 == n) {
        op = s;
        if (offset < child_start) break;
      }
    }
  } else {
    const unsigned lhs_end = EndOffset(Cur(kids[0]));
    for (unsigned i = 0; i < n; ++i) {
      unsigned offset = 0;
      clang_getExpansionLocation(clang_getTokenLocation(unit_, tokens[i]), nullptr, nullptr,
                                 nullptr, &offset);
      if (offset >= lhs_end && clang_getTokenKind(tokens[i]) == CXToken_Punctuation) {
        op = Take(clang_getTokenSpelling(unit_, tokens[i]));
        break;
      }
    }
  }
  if (tokens != nullptr) clang_disposeTokens(unit_, tokens, n);
  return op;
}

bool OpAnalyzer::IsOpField(CXCursor decl) const {
  if (clang_getCursorKind(decl) != CXCursor_FieldDecl) return false;
  return Has(classes_, Usr(clang_getCursorSemanticParent(decl)));
}

int OpAnalyzer::ObjectOf(int call) const {
  const auto& kids = nodes_[call].children;
  if (kids.empty()) return -1;
  const int first = kids[0];
  if (KindOf(first) == CXCursor_MemberRefExpr) {
    CXCursor ref = clang_getCursorReferenced(Cur(first));
    const CXCursorKind rk = clang_getCursorKind(ref);
    if (rk == CXCursor_CXXMethod || rk == CXCursor_FunctionTemplate ||
        rk == CXCursor_ConversionFunction) {
      return FirstExprChild(first);
    }
  }
  return first;  // an operator call: the object is the first operand
}

Root OpAnalyzer::ClassifyVar(CXCursor decl, int ref_node) const {
  Root r;
  r.decl = decl;
  r.ref_node = ref_node;
  const CXCursorKind k = clang_getCursorKind(decl);
  if (k == CXCursor_ParmDecl) {
    r.kind = RootKind::kParam;
    return r;
  }
  if (k == CXCursor_FieldDecl) {
    r.kind = IsOpField(decl) ? RootKind::kMember : RootKind::kOther;
    return r;
  }
  if (k != CXCursor_VarDecl) {
    r.kind = RootKind::kOther;
    return r;
  }
  if (clang_getCursorTLSKind(decl) != CXTLS_None) {
    r.kind = RootKind::kThreadLocal;
    return r;
  }
  const CXCursorKind parent = clang_getCursorKind(clang_getCursorSemanticParent(decl));
  const bool in_function = parent == CXCursor_FunctionDecl || parent == CXCursor_CXXMethod ||
                           parent == CXCursor_Constructor || parent == CXCursor_Destructor ||
                           parent == CXCursor_FunctionTemplate || parent == CXCursor_LambdaExpr;
  if (!in_function) {
    r.kind = RootKind::kGlobal;
    return r;
  }
  if (clang_Cursor_getStorageClass(decl) == CX_SC_Static) {
    r.kind = RootKind::kStatic;
    return r;
  }
  // A local reference bound to a member or a static is that member or static.
  if (clang_getCursorType(decl).kind == CXType_LValueReference) {
    for (CXCursor child : Children(decl)) {
      if (!IsExpr(clang_getCursorKind(child))) continue;
      Root target = RootOfCursor(child);
      if (target.kind != RootKind::kOther && target.kind != RootKind::kLocal) {
        target.ref_node = ref_node;
        return target;
      }
    }
  }
  r.kind = RootKind::kLocal;
  return r;
}

Root OpAnalyzer::RootOfCursor(CXCursor c) const {
  const CXCursorKind k = clang_getCursorKind(c);
  std::vector<CXCursor> kids = Children(c);
  if (k == CXCursor_DeclRefExpr) return ClassifyVar(clang_getCursorReferenced(c), -1);
  if (k == CXCursor_MemberRefExpr) {
    CXCursor ref = clang_getCursorReferenced(c);
    CXCursor base = clang_getNullCursor();
    for (CXCursor kid : kids) {
      if (IsExpr(clang_getCursorKind(kid))) base = kid;
    }
    if (clang_Cursor_isNull(base) || clang_getCursorKind(base) == CXCursor_CXXThisExpr) {
      return ClassifyVar(ref, -1);
    }
    return RootOfCursor(base);
  }
  if (k == CXCursor_UnexposedExpr || k == CXCursor_ParenExpr || k == CXCursor_UnaryOperator ||
      k == CXCursor_ArraySubscriptExpr) {
    for (CXCursor kid : kids) {
      if (IsExpr(clang_getCursorKind(kid))) return RootOfCursor(kid);
    }
  }
  return {};
}

Root OpAnalyzer::RootOf(int id) const {
  if (id < 0) return {};
  const CXCursorKind k = KindOf(id);
  switch (k) {
    case CXCursor_DeclRefExpr:
      return ClassifyVar(clang_getCursorReferenced(Cur(id)), id);
    case CXCursor_MemberRefExpr: {
      CXCursor ref = clang_getCursorReferenced(Cur(id));
      const int base = FirstExprChild(id);
      if (base < 0 || KindOf(base) == CXCursor_CXXThisExpr) return ClassifyVar(ref, id);
      return RootOf(base);
    }
    case CXCursor_UnexposedExpr:
    case CXCursor_ParenExpr:
    case CXCursor_UnaryOperator:
    case CXCursor_ArraySubscriptExpr:
    case CXCursor_CStyleCastExpr:
    case CXCursor_CXXStaticCastExpr:
    case CXCursor_CXXConstCastExpr:
    case CXCursor_CXXReinterpretCastExpr:
      return RootOf(FirstExprChild(id));
    case CXCursor_CallExpr: {
      CXCursor callee = clang_getCursorReferenced(Cur(id));
      const std::string name = Spelling(callee);
      if ((name == "move" || name == "forward") && InSystemHeader(callee) &&
          !nodes_[id].children.empty()) {
        return RootOf(nodes_[id].children.back());  // std::move(x_) designates x_
      }
      if (Has(kAccessors, name) ||
          (clang_getCursorKind(callee) == CXCursor_CXXMethod && Spelling(callee) == "operator=")) {
        return RootOf(ObjectOf(id));
      }
      return {};
    }
    default:
      return {};
  }
}

std::vector<std::string> OpAnalyzer::GuardsOf(int id) const {
  const auto& inherited = functions_[nodes_[id].function].guards;
  std::set<std::string> guards(inherited.begin(), inherited.end());
  int child = id;
  for (int p = nodes_[id].parent; p >= 0; child = p, p = nodes_[p].parent) {
    std::vector<int> conditions;
    ConditionsOver(p, child, conditions);
    for (int c : conditions) CollectFields(c, guards);
  }
  return {guards.begin(), guards.end()};
}

void OpAnalyzer::ConditionsOver(int p, int child, std::vector<int>& out) const {
  const CXCursorKind k = KindOf(p);
  if (k == CXCursor_IfStmt) {
    const unsigned then_start = ThenStart(p);
    if (StartOffset(Cur(child)) < then_start) return;  // inside the condition itself
    for (int c : nodes_[p].children) {
      if (StartOffset(Cur(c)) < then_start) out.push_back(c);
    }
  } else if (k == CXCursor_ConditionalOperator) {
    if (nodes_[p].children.empty() || nodes_[p].children[0] == child) return;
    out.push_back(nodes_[p].children[0]);
  } else if (k == CXCursor_CompoundStmt) {
    // `if (!random_) return;` earlier in the block: what follows runs only when random_ is set.
    for (int s : nodes_[p].children) {
      if (s == child) break;
      if (KindOf(s) != CXCursor_IfStmt || !ReturnsEarly(s)) continue;
      const unsigned then_start = ThenStart(s);
      std::vector<int> conditions;
      for (int c : nodes_[s].children) {
        if (StartOffset(Cur(c)) < then_start) conditions.push_back(c);
      }
      // Only a configuration (flags and numbers set from args) guards: `if (it != memo_.end())
      // return ...;` reads a cache that processing code fills, which decides nothing ahead.
      if (ReadsOnlyScalarFields(conditions))
        out.insert(out.end(), conditions.begin(), conditions.end());
    }
  }
}

bool OpAnalyzer::ReadsOnlyScalarFields(const std::vector<int>& ids) const {
  std::vector<int> todo = ids;
  while (!todo.empty()) {
    const int id = todo.back();
    todo.pop_back();
    if (KindOf(id) == CXCursor_MemberRefExpr) {
      CXCursor ref = clang_getCursorReferenced(Cur(id));
      const CXTypeKind k = clang_getCanonicalType(clang_getCursorType(ref)).kind;
      if (IsOpField(ref) && !(k >= CXType_Bool && k <= CXType_LongDouble) && k != CXType_Enum) {
        return false;
      }
    }
    todo.insert(todo.end(), nodes_[id].children.begin(), nodes_[id].children.end());
  }
  return true;
}

bool OpAnalyzer::ReturnsEarly(int if_node) const {
  const unsigned then_start = ThenStart(if_node);
  for (int c : nodes_[if_node].children) {
    if (StartOffset(Cur(c)) < then_start) continue;
    // The then-branch: a return, or a block with a return among its statements.
    if (KindOf(c) == CXCursor_ReturnStmt) return true;
    if (KindOf(c) != CXCursor_CompoundStmt) return false;
    for (int s : nodes_[c].children) {
      if (KindOf(s) == CXCursor_ReturnStmt) return true;
    }
    return false;
  }
  return false;
}

unsigned OpAnalyzer::ThenStart(int if_node) const {
  CXToken* tokens = nullptr;
  unsigned n = 0;
  clang_tokenize(unit_, clang_getCursorExtent(Cur(if_node)), &tokens, &n);
  unsigned result = 0;
  int depth = 0;
  for (unsigned i = 0; i < n; ++i) {
    const std::string s = Take(clang_getTokenSpelling(unit_, tokens[i]));
    if (s == "(") ++depth;
    if (s == ")" && --depth == 0) {
      clang_getExpansionLocation(clang_getTokenLocation(unit_, tokens[i]), nullptr, nullptr,
                                 nullptr, &result);
      break;
    }
  }
  if (tokens != nullptr) clang_disposeTokens(unit_, tokens, n);
  return result;
}

void OpAnalyzer::CollectFields(int id, std::set<std::string>& out) const {
  if (KindOf(id) == CXCursor_MemberRefExpr) {
    CXCursor ref = clang_getCursorReferenced(Cur(id));
    if (IsOpField(ref)) out.insert(Spelling(ref));
  }
  for (int c : nodes_[id].children) CollectFields(c, out);
}

void OpAnalyzer::AddEvidence(Property p, int id, std::string what) {
  const internal::Place place = PlaceOf(Cur(id));
  AddEvidenceAt(p, place.file, place.line, std::move(what), GuardsOf(id));
}

void OpAnalyzer::AddEvidenceAt(Property p, const std::string& file, int line, std::string what,
                               std::vector<std::string> guards) {
  for (const Evidence& e : report_.evidence) {
    if (e.property == p && e.line == line && e.file == file) return;
  }
  report_.evidence.push_back({p, file, line, std::move(what), std::move(guards)});
}

void OpAnalyzer::ApplySummary(int call, CXCursor callee, const FunctionSummary& s) {
  const std::vector<std::string> guards = GuardsOf(call);
  for (const Effect& e : s.effects) {
    if (e.race) {
      external_races_.push_back({call, e});
    } else {
      AddEvidenceAt(e.property, e.file, e.line, e.what, guards);
    }
  }
  const std::string usr = Usr(callee);
  for (int j : s.written_params) written_params_.insert(fmt::format("{}#{}", usr, j));
  summarized_.insert(usr);
}

FunctionSummary OpAnalyzer::Summarize(CXCursor fn) {
  Queue(fn, {});
  Drain();
  process_end_ = static_cast<int>(nodes_.size());
  IndexRefs();
  FindWrites();
  FindRandomness();
  FindIo();
  FunctionSummary s;
  for (const Evidence& e : report_.evidence)
    s.effects.push_back({e.property, e.file, e.line, e.what});
  // Unlocked writes to statics and globals race if a parallel op's Process reaches them with no
  // lock held; the caller decides.
  for (const SharedWrite& w : shared_writes_) {
    if (w.synced || IsLocked(w.node)) continue;
    const Place place = PlaceOf(Cur(w.node));
    s.effects.push_back({Property::kRace, place.file, place.line, w.what, true});
  }
  for (const ExternalRace& r : external_races_) {
    if (!IsLocked(r.call)) s.effects.push_back(r.effect);
  }
  const std::string usr = Usr(fn);
  const size_t n = ParamsOf(fn).size();
  for (size_t i = 0; i < n; ++i) {
    if (written_params_.contains(fmt::format("{}#{}", usr, i))) {
      s.written_params.push_back(static_cast<int>(i));
    }
  }
  return s;
}

void OpAnalyzer::IndexRefs() {
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    const CXCursorKind k = KindOf(i);
    if (k != CXCursor_DeclRefExpr && k != CXCursor_MemberRefExpr) continue;
    CXCursor ref = clang_getCursorReferenced(Cur(i));
    const CXCursorKind rk = clang_getCursorKind(ref);
    if (rk == CXCursor_VarDecl || rk == CXCursor_FieldDecl || rk == CXCursor_ParmDecl) {
      refs_[Usr(ref)].push_back(i);
    }
  }
}

void OpAnalyzer::Conclude() {
  auto verdict = [&](Property p, std::vector<std::string>& guards_out) {
    bool any = false, unguarded = false;
    std::set<std::string> guards;
    for (const Evidence& e : report_.evidence) {
      if (e.property != p) continue;
      any = true;
      if (e.guards.empty()) unguarded = true;
      guards.insert(e.guards.begin(), e.guards.end());
    }
    if (!any) return Verdict::kHolds;
    if (unguarded) return Verdict::kViolated;
    guards_out.assign(guards.begin(), guards.end());
    return Verdict::kConditional;
  };
  report_.deterministic_verdict = verdict(Property::kDeterministic, report_.deterministic_guards);
  report_.stateless_verdict = verdict(Property::kStateless, report_.stateless_guards);
  report_.deterministic = report_.deterministic_verdict == Verdict::kHolds;
  report_.stateless = report_.stateless_verdict == Verdict::kHolds;
  report_.io = std::any_of(report_.evidence.begin(), report_.evidence.end(),
                           [](const Evidence& e) { return e.property == Property::kIo; });
  report_.race = std::any_of(report_.evidence.begin(), report_.evidence.end(),
                             [](const Evidence& e) { return e.property == Property::kRace; });
  std::stable_sort(report_.evidence.begin(), report_.evidence.end(),
                   [](const Evidence& a, const Evidence& b) {
                     if (a.property != b.property) return a.property < b.property;
                     return a.line < b.line;
                   });
}

}  // namespace sluice::inspect::internal
