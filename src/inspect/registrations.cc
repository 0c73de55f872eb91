// The registration finder: SLUICE_REGISTER_OP's registrar variables in the main file, their
// registered names and the op classes their factories make.
#include "inspect/registrations.h"

#include "sluice/pipeline/registrar_name.h"

namespace sluice::inspect::internal {
namespace {

bool SameFile(CXCursor c, CXFile main) {
  CXFile file = nullptr;
  clang_getExpansionLocation(clang_getCursorLocation(c), &file, nullptr, nullptr, nullptr);
  return file != nullptr && clang_File_isEqual(file, main) != 0;
}

}  // namespace

void FindRegistrations(CXCursor parent, CXFile main, std::vector<Registration>& out) {
  for (CXCursor c : Children(parent)) {
    const CXCursorKind k = clang_getCursorKind(c);
    if (k == CXCursor_Namespace || k == CXCursor_LinkageSpec || k == CXCursor_UnexposedDecl) {
      // Only the main file's own blocks: the headers' (std, cv, nlohmann...) hold thousands of
      // declarations, and a registrar is in the main file.
      if (SameFile(c, main)) FindRegistrations(c, main, out);
      continue;
    }
    if (k != CXCursor_VarDecl || !Spelling(c).starts_with(pipeline::internal::kOpRegistrarPrefix) ||
        !SameFile(c, main)) {
      continue;
    }
    // The registered name is the registrar's string argument; the class is what the factory
    // lambda makes (std::make_unique<Class>).
    Registration r{"", clang_getNullCursor()};
    std::vector<CXCursor> stack = {c};
    while (!stack.empty()) {
      CXCursor n = stack.back();
      stack.pop_back();
      const CXCursorKind nk = clang_getCursorKind(n);
      if (nk == CXCursor_StringLiteral && r.name.empty()) {
        CXEvalResult e = clang_Cursor_Evaluate(n);
        if (e != nullptr) {
          if (clang_EvalResult_getKind(e) == CXEval_StrLiteral) {
            r.name = clang_EvalResult_getAsStr(e);
          }
          clang_EvalResult_dispose(e);
        }
        if (r.name.empty()) {
          r.name = Spelling(n);
          if (r.name.size() >= 2) r.name = r.name.substr(1, r.name.size() - 2);
        }
      }
      if (nk == CXCursor_CallExpr && Spelling(n) == "make_unique" &&
          clang_Cursor_isNull(r.op_class)) {
        CXType arg =
            clang_Type_getTemplateArgumentAsType(clang_getCanonicalType(clang_getCursorType(n)), 0);
        CXCursor decl = clang_getTypeDeclaration(arg);
        if (!clang_Cursor_isNull(decl)) r.op_class = clang_getCursorDefinition(decl);
      }
      auto kids = Children(n);
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
    }
    if (!r.name.empty() && !clang_Cursor_isNull(r.op_class)) out.push_back(r);
  }
}

}  // namespace sluice::inspect::internal
