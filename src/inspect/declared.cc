// What the op declares: the fields of the OpProperties its properties() returns, as text, value
// and the members they read.
#include <cctype>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "inspect/op_analyzer.h"

namespace sluice::inspect::internal {
namespace {

// The fields of OpProperties, in their order: positional initializers follow it.
const char* const kFields[] = {"kind", "parallelizable", "deterministic", "stateless"};

// The expression each field of OpProperties gets in `properties` (the method's definition):
// positional or designated initializers of an OpProperties, or assignments to its fields
// (`OpProperties p; p.x = ...; return p;`).
std::map<std::string, CXCursor> FieldValues(CXCursor properties) {
  std::map<std::string, CXCursor> values;
  std::vector<CXCursor> stack = {properties};
  CXCursor init_list = clang_getNullCursor();
  while (!stack.empty()) {
    CXCursor c = stack.back();
    stack.pop_back();
    const CXCursorKind k = clang_getCursorKind(c);
    if (k == CXCursor_InitListExpr && clang_Cursor_isNull(init_list) &&
        TypeSpelling(clang_getCursorType(c)).find("OpProperties") != std::string::npos) {
      init_list = c;
      continue;
    }
    if (k == CXCursor_BinaryOperator) {
      auto kids = Children(c);
      if (kids.size() == 2 && clang_getCursorKind(kids[0]) == CXCursor_MemberRefExpr) {
        const std::string field = Spelling(kids[0]);
        for (const char* f : kFields) {
          if (field == f) values[field] = kids[1];
        }
      }
    }
    auto kids = Children(c);
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
  }
  if (!clang_Cursor_isNull(init_list)) {
    size_t position = 0;
    for (CXCursor item : Children(init_list)) {
      auto kids = Children(item);
      if (clang_getCursorKind(item) == CXCursor_UnexposedExpr && kids.size() == 2 &&
          clang_getCursorKind(kids[0]) == CXCursor_MemberRef) {
        values[Spelling(kids[0])] = kids[1];  // .field = value
      } else if (position < std::size(kFields)) {
        values[kFields[position]] = item;
      }
      ++position;
    }
  }
  return values;
}

// The expression's tokens joined as written, with a space only between two words.
std::string TextOf(CXTranslationUnit unit, CXCursor expr) {
  std::string text;
  for (const std::string& t : Tokens(unit, expr)) {
    if (!text.empty() && std::isalnum(static_cast<unsigned char>(text.back())) &&
        std::isalnum(static_cast<unsigned char>(t.front()))) {
      text += ' ';
    }
    text += t;
  }
  return text;
}

}  // namespace

void OpAnalyzer::ReadDeclaredValue(const std::map<std::string, CXCursor>& values, const char* field,
                                   DeclaredValue& out, bool fallback) const {
  out.found = true;
  auto it = values.find(field);
  if (it == values.end()) {
    out.text = fallback ? "true" : "false";
    out.value = fallback;
    return;
  }
  const std::string text = TextOf(unit_, it->second);
  out.text = text;
  std::set<std::string> members;
  std::vector<CXCursor> st = {it->second};
  while (!st.empty()) {
    CXCursor c = st.back();
    st.pop_back();
    if (clang_getCursorKind(c) == CXCursor_MemberRefExpr) {
      CXCursor ref = clang_getCursorReferenced(c);
      if (IsOpField(ref)) members.insert(Spelling(ref));
    }
    for (CXCursor kid : Children(c)) st.push_back(kid);
  }
  out.members.assign(members.begin(), members.end());
  if (text == "true" || text == "false") {
    out.value = text == "true";
  } else if (members.empty()) {
    CXEvalResult r = clang_Cursor_Evaluate(it->second);
    if (r != nullptr) {
      if (clang_EvalResult_getKind(r) == CXEval_Int) {
        out.value = clang_EvalResult_getAsInt(r) != 0;
      }
      clang_EvalResult_dispose(r);
    }
  }
}

void OpAnalyzer::ReadDeclared() {
  CXCursor m = FindMethod("properties");
  if (clang_Cursor_isNull(m)) return;
  const std::map<std::string, CXCursor> values = FieldValues(m);
  ReadDeclaredValue(values, "parallelizable", report_.declared_parallelizable, false);
  ReadDeclaredValue(values, "deterministic", report_.declared_deterministic, true);
  ReadDeclaredValue(values, "stateless", report_.declared_stateless, true);
}

}  // namespace sluice::inspect::internal
