// The libclang (C API) calls that can fail go through ClangCheck; owners for its handles and
// small helpers over cursors that the analysis shares.
#pragma once

#include <clang-c/CXCompilationDatabase.h>
#include <clang-c/Index.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::inspect::internal {

// Throws sluice::Error "libclang: WHAT failed (CODE)" unless `code` is CXError_Success.
void ClangCheck(CXErrorCode code, std::string_view what);
// Throws sluice::Error "libclang: WHAT failed" when `handle` is null; returns it otherwise.
template <typename T>
T* ClangCheck(T* handle, std::string_view what) {
  if (handle == nullptr) ClangCheck(CXError_Failure, what);
  return handle;
}

struct IndexDeleter {
  void operator()(void* index) const { clang_disposeIndex(index); }
};
struct UnitDeleter {
  void operator()(CXTranslationUnitImpl* unit) const { clang_disposeTranslationUnit(unit); }
};
using IndexPtr = std::unique_ptr<void, IndexDeleter>;
using UnitPtr = std::unique_ptr<CXTranslationUnitImpl, UnitDeleter>;

// Takes ownership of a CXString and returns its text.
std::string Take(CXString s);

std::string Spelling(CXCursor c);
std::string TypeSpelling(CXType t);  // canonical spelling, e.g. "std::mersenne_twister_engine<..."
std::string Usr(CXCursor c);
std::vector<CXCursor> Children(CXCursor c);
// The tokens of a cursor's extent.
std::vector<std::string> Tokens(CXTranslationUnit unit, CXCursor c);

struct Place {
  std::string file;
  int line = 0;
  unsigned offset = 0;
};
// Where the cursor's text was written (the expansion point for macro-generated code).
Place PlaceOf(CXCursor c);

bool IsExpr(CXCursorKind k);
bool InSystemHeader(CXCursor c);
bool FromMainFile(CXCursor c);
// The enclosing namespaces and classes of a declaration, outermost first ("std::chrono").
std::string Scope(CXCursor c);
// File offsets of the start and the end of a cursor's extent (at their expansion points).
unsigned StartOffset(CXCursor c);
unsigned EndOffset(CXCursor c);

}  // namespace sluice::inspect::internal
