// libclang's checking helper and the small cursor helpers the analysis shares.
#include "inspect/clang_api.h"

#include "sluice/common/error.h"

namespace sluice::inspect::internal {

void ClangCheck(CXErrorCode code, std::string_view what) {
  if (code == CXError_Success) return;
  const char* why = code == CXError_Crashed            ? "libclang crashed"
                    : code == CXError_InvalidArguments ? "invalid arguments"
                    : code == CXError_ASTReadError     ? "AST read error"
                                                       : "failure";
  Fail("libclang: {} failed ({})", what, why);
}

std::string Take(CXString s) {
  const char* text = clang_getCString(s);
  std::string out = text == nullptr ? "" : text;
  clang_disposeString(s);
  return out;
}

std::string Spelling(CXCursor c) { return Take(clang_getCursorSpelling(c)); }

std::string TypeSpelling(CXType t) {
  return Take(clang_getTypeSpelling(clang_getCanonicalType(t)));
}

std::string Usr(CXCursor c) { return Take(clang_getCursorUSR(c)); }

std::vector<CXCursor> Children(CXCursor c) {
  std::vector<CXCursor> out;
  clang_visitChildren(
      c,
      [](CXCursor child, CXCursor, CXClientData data) {
        static_cast<std::vector<CXCursor>*>(data)->push_back(child);
        return CXChildVisit_Continue;
      },
      &out);
  return out;
}

std::vector<std::string> Tokens(CXTranslationUnit unit, CXCursor c) {
  CXToken* tokens = nullptr;
  unsigned n = 0;
  clang_tokenize(unit, clang_getCursorExtent(c), &tokens, &n);
  std::vector<std::string> out;
  out.reserve(n);
  for (unsigned i = 0; i < n; ++i) out.push_back(Take(clang_getTokenSpelling(unit, tokens[i])));
  if (tokens != nullptr) clang_disposeTokens(unit, tokens, n);
  return out;
}

Place PlaceOf(CXCursor c) {
  CXFile file = nullptr;
  unsigned line = 0, column = 0, offset = 0;
  clang_getExpansionLocation(clang_getCursorLocation(c), &file, &line, &column, &offset);
  Place p;
  if (file != nullptr) p.file = Take(clang_getFileName(file));
  p.line = static_cast<int>(line);
  p.offset = offset;
  return p;
}

bool IsExpr(CXCursorKind k) { return k >= CXCursor_FirstExpr && k <= CXCursor_LastExpr; }

bool InSystemHeader(CXCursor c) {
  return clang_Location_isInSystemHeader(clang_getCursorLocation(c)) != 0;
}

bool FromMainFile(CXCursor c) {
  return clang_Location_isFromMainFile(clang_getCursorLocation(c)) != 0;
}

std::string Scope(CXCursor c) {
  std::vector<std::string> parts;
  for (CXCursor p = clang_getCursorSemanticParent(c);
       !clang_Cursor_isNull(p) && clang_getCursorKind(p) != CXCursor_TranslationUnit;
       p = clang_getCursorSemanticParent(p)) {
    parts.push_back(Spelling(p));
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!out.empty()) out += "::";
    out += *it;
  }
  return out;
}

unsigned StartOffset(CXCursor c) {
  unsigned offset = 0;
  clang_getExpansionLocation(clang_getRangeStart(clang_getCursorExtent(c)), nullptr, nullptr,
                             nullptr, &offset);
  return offset;
}
unsigned EndOffset(CXCursor c) {
  unsigned offset = 0;
  clang_getExpansionLocation(clang_getRangeEnd(clang_getCursorExtent(c)), nullptr, nullptr, nullptr,
                             &offset);
  return offset;
}

}  // namespace sluice::inspect::internal
