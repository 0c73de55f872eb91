// Parses op sources with libclang, finds SLUICE_REGISTER_OP registrations and classifies each
// op's processing code (Process / Next / BeginEpoch and what they call in the same file).
// The rules are described in docs/inspect.md.
#include "sluice/inspect/inspect.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "inspect/clang_api.h"
#include "sluice/common/error.h"

namespace sluice::inspect {

const char* PropertyName(Property p) {
  switch (p) {
    case Property::kDeterministic:
      return "deterministic";
    case Property::kStateless:
      return "stateless";
    case Property::kIo:
      return "io";
  }
  return "?";
}

namespace {

namespace fs = std::filesystem;
using internal::Children;
using internal::PlaceOf;
using internal::Spelling;
using internal::Take;
using internal::TypeSpelling;
using internal::Usr;

bool IsExpr(CXCursorKind k) { return k >= CXCursor_FirstExpr && k <= CXCursor_LastExpr; }

bool StartsWith(std::string_view s, std::string_view prefix) { return s.starts_with(prefix); }

template <typename Set>
bool Has(const Set& set, const std::string& key) {
  return set.find(key) != set.end();
}

const std::set<std::string> kCRandom = {"rand",
                                        "random",
                                        "drand48",
                                        "lrand48",
                                        "mrand48",
                                        "erand48",
                                        "nrand48",
                                        "jrand48",
                                        "getrandom",
                                        "arc4random",
                                        "arc4random_uniform",
                                        "arc4random_buf",
                                        "getentropy"};
const std::set<std::string> kCClocks = {"time", "clock", "clock_gettime", "gettimeofday",
                                        "timespec_get"};
const std::set<std::string> kSluiceClocks = {"MonotonicNanos", "ThreadCpuNanos", "ProcessCpuNanos"};
const std::set<std::string> kCIo = {
    "fopen",   "fdopen",      "freopen", "fread",    "fwrite",   "fgets",     "fgetc",
    "getc",    "fputs",       "fputc",   "putc",     "fprintf",  "fscanf",    "fclose",
    "fflush",  "fseek",       "ftell",   "open",     "openat",   "creat",     "read",
    "write",   "pread",       "pwrite",  "readv",    "writev",   "close",     "lseek",
    "stat",    "fstat",       "lstat",   "mmap",     "socket",   "connect",   "accept",
    "bind",    "listen",      "recv",    "recvfrom", "recvmsg",  "send",      "sendto",
    "sendmsg", "getaddrinfo", "glob",    "opendir",  "readdir",  "remove",    "rename",
    "unlink",  "mkdir",       "rmdir",   "popen",    "system",   "ioctl",     "poll",
    "select",  "epoll_wait",  "getline", "getdelim", "truncate", "ftruncate", "fsync"};
const std::set<std::string> kSleeps = {"sleep_for",  "sleep_until",  "wait_for",
                                       "wait_until", "try_lock_for", "try_lock_until",
                                       "nanosleep",  "usleep",       "sleep"};
const std::set<std::string> kLockMethods = {
    "lock", "try_lock", "lock_shared", "try_lock_shared", "try_lock_for", "try_lock_until"};
// Non-const member functions that only hand out access; what is done with the result decides
// whether the member is written (`v_[i] = x` writes, `x = v_[i]` reads).
const std::set<std::string> kAccessors = {
    "operator[]",  "operator*", "operator->", "at",    "begin", "end",          "rbegin",
    "rend",        "data",      "front",      "back",  "find",  "lower_bound",  "upper_bound",
    "equal_range", "get",       "value",      "c_str", "str",   "operator bool"};
const char* const kEngineTypes[] = {
    "std::mersenne_twister_engine<",    "std::linear_congruential_engine<",
    "std::subtract_with_carry_engine<", "std::discard_block_engine<",
    "std::independent_bits_engine<",    "std::shuffle_order_engine<"};
const char* const kLockTypes[] = {"std::lock_guard<", "std::unique_lock<", "std::scoped_lock<",
                                  "std::shared_lock<"};
const char* const kFileStreamTypes[] = {"std::basic_ifstream<",
                                        "std::basic_ofstream<",
                                        "std::basic_fstream<",
                                        "std::basic_filebuf<",
                                        "std::filesystem::directory_iterator",
                                        "std::filesystem::recursive_directory_iterator"};

bool IsEngineType(const std::string& t) {
  for (const char* e : kEngineTypes) {
    if (StartsWith(t, e)) return true;
  }
  return false;
}
template <size_t N>
bool StartsWithAny(const std::string& t, const char* const (&list)[N]) {
  for (const char* e : list) {
    if (StartsWith(t, e)) return true;
  }
  return false;
}

std::string StripConstRef(std::string t) {
  if (StartsWith(t, "const ")) t = t.substr(6);
  while (!t.empty() && (t.back() == '&' || t.back() == ' ' || t.back() == '*')) t.pop_back();
  return t;
}

bool InSystemHeader(CXCursor c) {
  return clang_Location_isInSystemHeader(clang_getCursorLocation(c)) != 0;
}

bool FromMainFile(CXCursor c) {
  return clang_Location_isFromMainFile(clang_getCursorLocation(c)) != 0;
}

// A definition whose code the inspector follows: in the file itself, or inline in a header of
// the user's own (helpers shared by several ops). The runtime's public headers
// (include/sluice/) are judged by the known-call lists instead, like system headers.
bool FollowableDefinition(CXCursor def) {
  if (FromMainFile(def)) return true;
  if (InSystemHeader(def)) return false;
  CXFile file = nullptr;
  clang_getSpellingLocation(clang_getCursorLocation(def), &file, nullptr, nullptr, nullptr);
  if (file == nullptr) return false;
  CXString name = clang_getFileName(file);
  const std::string path = clang_getCString(name) != nullptr ? clang_getCString(name) : "";
  clang_disposeString(name);
  return path.find("/include/sluice/") == std::string::npos &&
         path.find("include/sluice/") != 0;
}

// The enclosing namespaces and classes of a declaration, outermost first ("std::chrono").
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

// ---------------------------------------------------------------------------------------------
// Compile arguments

// g++ flags that clang rejects or that would turn clang's warnings into parse failures.
bool DropFlag(const std::string& a) {
  static const char* const kDrop[] = {"-Werror",
                                      "-fno-semantic-interposition",
                                      "-fconcepts-diagnostics-depth",
                                      "-fmodules-ts",
                                      "-fno-fat-lto-objects",
                                      "-flto",
                                      "-fcoroutines",
                                      "-Wno-maybe-uninitialized",
                                      "-fdiagnostics-color",
                                      "-fstack-clash-protection",
                                      "-fcf-protection"};
  for (const char* d : kDrop) {
    if (StartsWith(a, d)) return true;
  }
  return StartsWith(a, "-Werror=");
}

// The resource directory with clang's own headers (stddef.h & co.), which libclang needs for
// <random> and the rest of the standard library to parse.
std::optional<std::string> ResourceDir() {
#ifdef SLUICE_CLANG_RESOURCE_DIR
  if (fs::is_directory(SLUICE_CLANG_RESOURCE_DIR)) return std::string(SLUICE_CLANG_RESOURCE_DIR);
#endif
  for (const char* root : {"/usr/lib/llvm-14/lib/clang", "/usr/lib/clang"}) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      if (fs::exists(entry.path() / "include" / "stddef.h")) return entry.path().string();
    }
  }
  return std::nullopt;
}

// The arguments for `file`: its compile command from `build_dir` when listed there (paths made
// absolute, the compiler, output and source removed), else -std=c++20; then `extra`.
std::vector<std::string> ArgumentsFor(const std::string& file, const InspectOptions& options) {
  std::vector<std::string> args;
  bool from_db = false;
  if (!options.build_dir.empty() && fs::exists(options.build_dir / "compile_commands.json")) {
    CXCompilationDatabase_Error err = CXCompilationDatabase_NoError;
    CXCompilationDatabase db =
        clang_CompilationDatabase_fromDirectory(options.build_dir.c_str(), &err);
    internal::ClangCheck(
        err == CXCompilationDatabase_NoError ? CXError_Success : CXError_Failure,
        fmt::format("reading {}/compile_commands.json", options.build_dir.string()));
    const std::string absolute = fs::weakly_canonical(fs::absolute(file)).string();
    CXCompileCommands commands = clang_CompilationDatabase_getCompileCommands(db, absolute.c_str());
    if (commands != nullptr && clang_CompileCommands_getSize(commands) > 0) {
      CXCompileCommand cmd = clang_CompileCommands_getCommand(commands, 0);
      const fs::path dir = Take(clang_CompileCommand_getDirectory(cmd));
      const unsigned n = clang_CompileCommand_getNumArgs(cmd);
      for (unsigned i = 1; i < n; ++i) {  // [0] is the compiler
        std::string a = Take(clang_CompileCommand_getArg(cmd, i));
        if (a == "-o" || a == "-MF" || a == "-MT" || a == "-MQ") {
          ++i;
          continue;
        }
        if (a == "-c" || a == "--" || a == "-MD" || a == "-MMD" || DropFlag(a)) continue;
        if (fs::path(a).is_absolute() ? fs::path(a) == absolute
                                      : fs::weakly_canonical(dir / a).string() == absolute) {
          continue;  // the source file itself
        }
        for (const char* flag : {"-I", "-isystem", "-iquote"}) {
          if (StartsWith(a, flag) && a.size() > std::string_view(flag).size()) {
            fs::path p = a.substr(std::string_view(flag).size());
            if (p.is_relative()) a = std::string(flag) + (dir / p).string();
          }
        }
        args.push_back(a);
      }
      from_db = true;
    }
    if (commands != nullptr) clang_CompileCommands_dispose(commands);
    clang_CompilationDatabase_dispose(db);
  }
  if (!from_db) {
    args = {"-x", "c++", "-std=c++20"};
  }
  if (auto dir = ResourceDir()) {
    args.push_back("-resource-dir");
    args.push_back(*dir);
  }
  args.push_back("-Wno-unknown-warning-option");
  args.push_back("-Wno-unused-command-line-argument");
  for (const std::string& a : options.extra_args) args.push_back(a);
  return args;
}

internal::UnitPtr Parse(CXIndex index, const std::string& file, const InspectOptions& options) {
  if (!fs::is_regular_file(file)) Fail("{}: no such file", file);
  const std::vector<std::string> args = ArgumentsFor(file, options);
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  CXTranslationUnit unit = nullptr;
  internal::ClangCheck(
      clang_parseTranslationUnit2(index, file.c_str(), argv.data(), static_cast<int>(argv.size()),
                                  nullptr, 0, CXTranslationUnit_DetailedPreprocessingRecord, &unit),
      fmt::format("parsing {}", file));
  internal::UnitPtr owned(internal::ClangCheck(unit, fmt::format("parsing {}", file)));
  std::string errors;
  int n_errors = 0;
  const unsigned n = clang_getNumDiagnostics(unit);
  for (unsigned i = 0; i < n; ++i) {
    CXDiagnostic d = clang_getDiagnostic(unit, i);
    const CXDiagnosticSeverity severity = clang_getDiagnosticSeverity(d);
    if (severity >= CXDiagnostic_Error) {
      ++n_errors;
      errors += Take(clang_formatDiagnostic(d, clang_defaultDiagnosticDisplayOptions()));
      errors += '\n';
    }
    clang_disposeDiagnostic(d);
  }
  if (n_errors > 0) {
    Fail("{}: does not compile ({} error{}); the compiler says:\n{}", file, n_errors,
         n_errors == 1 ? "" : "s", errors);
  }
  return owned;
}

// ---------------------------------------------------------------------------------------------
// The analysis of one op

struct Node {
  CXCursor cursor;
  int parent = -1;  // -1: the root of a function body
  int function = 0;
  std::vector<int> children;
};

struct Function {
  CXCursor decl;
  std::vector<std::string> guards;  // inherited from the call site
};

enum class RootKind { kMember, kStatic, kGlobal, kThreadLocal, kLocal, kParam, kOther };
struct Root {
  RootKind kind = RootKind::kOther;
  CXCursor decl = clang_getNullCursor();
  int ref_node = -1;  // the node naming it
};

class OpAnalyzer {
 public:
  OpAnalyzer(CXTranslationUnit unit, CXCursor op_class, OpReport& report)
      : unit_(unit), report_(report) {
    AddClass(op_class);
  }

  void Run() {
    for (const char* name : {"Process", "Next", "BeginEpoch"}) {
      CXCursor m = FindMethod(name);
      if (!clang_Cursor_isNull(m)) Queue(m, {});
    }
    while (!queue_.empty()) {
      Function f = queue_.front();
      queue_.pop_front();
      Walk(f);
    }
    IndexRefs();
    FindWrites();
    FindRandomness();
    FindIo();
    ReadDeclared();
    Conclude();
  }

 private:
  // ---- classes, methods, call following

  void AddClass(CXCursor c) {
    CXCursor def = clang_getCursorDefinition(c);
    if (clang_Cursor_isNull(def)) def = c;
    if (!classes_.insert(Usr(def)).second) return;
    class_defs_.push_back(def);
    for (CXCursor child : Children(def)) {
      if (clang_getCursorKind(child) != CXCursor_CXXBaseSpecifier) continue;
      CXCursor base = clang_getCursorDefinition(clang_getCursorReferenced(child));
      if (!clang_Cursor_isNull(base) && FromMainFile(base)) AddClass(base);
    }
  }

  CXCursor FindMethod(const std::string& name) const {
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

  void Queue(CXCursor decl, std::vector<std::string> guards) {
    std::string key = Usr(decl) + "|";
    for (const std::string& g : guards) key += g + ",";
    if (!visited_.insert(key).second) return;
    queue_.push_back({decl, std::move(guards)});
  }

  void Walk(const Function& f) {
    functions_.push_back(f);
    const int fn = static_cast<int>(functions_.size()) - 1;
    for (CXCursor child : Children(f.decl)) {
      if (clang_getCursorKind(child) == CXCursor_CompoundStmt) Add(child, -1, fn);
    }
  }

  int Add(CXCursor c, int parent, int fn) {
    const int id = static_cast<int>(nodes_.size());
    nodes_.push_back({c, parent, fn, {}});
    if (parent >= 0) nodes_[parent].children.push_back(id);
    if (clang_getCursorKind(c) == CXCursor_CallExpr) Follow(id);
    for (CXCursor child : Children(c)) Add(child, id, fn);
    return id;
  }

  // Queues the definition a call reaches when it is in this file; notes calls it cannot see.
  void Follow(int id) {
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
          if (!clang_Cursor_isNull(def)) Queue(def, GuardsOf(id));
        }
      }
      return;
    }
    CXCursor def = clang_getCursorDefinition(callee);
    if (!clang_Cursor_isNull(def) && FollowableDefinition(def)) {
      const CXCursorKind k = clang_getCursorKind(def);
      if (k == CXCursor_FunctionDecl || k == CXCursor_CXXMethod || k == CXCursor_Constructor ||
          k == CXCursor_FunctionTemplate || k == CXCursor_ConversionFunction) {
        Queue(def, GuardsOf(id));
      }
      return;
    }
    if (InSystemHeader(callee)) return;
    const CXCursorKind k = clang_getCursorKind(callee);
    if (k != CXCursor_FunctionDecl && k != CXCursor_CXXMethod && k != CXCursor_FunctionTemplate) {
      return;
    }
    if (Has(kSluiceClocks, name) || name == "MixSeed") return;
    std::string qualified = Scope(callee);
    qualified = qualified.empty() ? name : qualified + "::" + name;
    if (std::find(report_.unresolved_calls.begin(), report_.unresolved_calls.end(), qualified) ==
        report_.unresolved_calls.end()) {
      report_.unresolved_calls.push_back(qualified);
    }
  }

  // ---- helpers over nodes

  CXCursorKind KindOf(int id) const { return clang_getCursorKind(nodes_[id].cursor); }
  CXCursor Cur(int id) const { return nodes_[id].cursor; }

  int FirstExprChild(int id) const {
    for (int c : nodes_[id].children) {
      if (IsExpr(KindOf(c))) return c;
    }
    return -1;
  }

  // The operator of a binary, compound-assignment or unary operator node ("=", "+=", "++").
  std::string OperatorOf(int id) const {
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

  bool IsOpField(CXCursor decl) const {
    if (clang_getCursorKind(decl) != CXCursor_FieldDecl) return false;
    return Has(classes_, Usr(clang_getCursorSemanticParent(decl)));
  }

  // The object a member call is made on (`x` in `x.f()`, the left operand of `x = y` when
  // `operator=` is a member); -1 for an implicit `this`.
  int ObjectOf(int call) const {
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

  Root ClassifyVar(CXCursor decl, int ref_node) const {
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

  // What an lvalue expression designates, for cursors outside the node list (initializers).
  Root RootOfCursor(CXCursor c) const {
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

  // What an lvalue expression node designates: `a_.b[i]` is member a_, `*out` is parameter out.
  Root RootOf(int id) const {
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
        if (Has(kAccessors, Spelling(callee)) ||
            (clang_getCursorKind(callee) == CXCursor_CXXMethod &&
             Spelling(callee) == "operator=")) {
          return RootOf(ObjectOf(id));
        }
        return {};
      }
      default:
        return {};
    }
  }

  std::string RootName(const Root& r) const { return Spelling(r.decl); }

  // Members of the op class read in a condition that decides whether node `id` runs.
  std::vector<std::string> GuardsOf(int id) const {
    const auto& inherited = functions_[nodes_[id].function].guards;
    std::set<std::string> guards(inherited.begin(), inherited.end());
    int child = id;
    for (int p = nodes_[id].parent; p >= 0; child = p, p = nodes_[p].parent) {
      const CXCursorKind k = KindOf(p);
      std::vector<int> conditions;
      if (k == CXCursor_IfStmt) {
        const unsigned then_start = ThenStart(p);
        if (StartOffset(Cur(child)) < then_start) continue;  // inside the condition itself
        for (int c : nodes_[p].children) {
          if (StartOffset(Cur(c)) < then_start) conditions.push_back(c);
        }
      } else if (k == CXCursor_ConditionalOperator) {
        if (nodes_[p].children.empty() || nodes_[p].children[0] == child) continue;
        conditions.push_back(nodes_[p].children[0]);
      } else {
        continue;
      }
      for (int c : conditions) CollectFields(c, guards);
    }
    return {guards.begin(), guards.end()};
  }

  // Where an if statement's branches begin: just after the `)` closing its condition.
  unsigned ThenStart(int if_node) const {
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

  void CollectFields(int id, std::set<std::string>& out) const {
    if (KindOf(id) == CXCursor_MemberRefExpr) {
      CXCursor ref = clang_getCursorReferenced(Cur(id));
      if (IsOpField(ref)) out.insert(Spelling(ref));
    }
    for (int c : nodes_[id].children) CollectFields(c, out);
  }

  void AddEvidence(Property p, int id, std::string what) {
    const internal::Place place = PlaceOf(Cur(id));
    for (const Evidence& e : report_.evidence) {
      if (e.property == p && e.line == place.line && e.file == place.file) return;
    }
    report_.evidence.push_back({p, place.file, place.line, std::move(what), GuardsOf(id)});
  }

  // ---- references

  void IndexRefs() {
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

  // ---- state

  void RecordWrite(int target, int at, const std::string& verb) {
    const Root r = RootOf(target);
    if (r.ref_node >= 0) write_refs_.insert(r.ref_node);
    switch (r.kind) {
      case RootKind::kMember: {
        const std::string usr = Usr(r.decl);
        written_.insert(usr);
        const bool store = verb == "assigns" || verb == "calls non-const store() on";
        member_writes_.push_back(
            {usr, at, fmt::format("{} member '{}'", verb, RootName(r)), store});
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

  void FindWrites() {
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
        if (StartsWithAny(t, kLockTypes)) {
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

  std::string RootKey(int target) const {
    const Root r = RootOf(target);
    return r.kind == RootKind::kOther ? "" : Usr(r.decl);
  }

  bool WriteOnlyAtomic(const std::string& usr) const {
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

  void CheckCall(int i) {
    CXCursor callee = clang_getCursorReferenced(Cur(i));
    const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
    if (StartsWithAny(t, kLockTypes)) {
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

  // ---- randomness

  // Why the value of expression `c` changes from epoch to epoch, or nullopt when it does not:
  // it reads the epoch, a random source, the clock, or state that processing code writes.
  std::optional<std::string> Varies(CXCursor c, std::set<std::string>& seen) const {
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

  void FindRandomness() {
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

  void EngineUse(int i, CXCursor engine) {
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

  // ---- the clock

  void ClockCall(int call, const std::string& name) {
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

  bool IsInside(int id, int ancestor) const {
    for (int p = id; p >= 0; p = nodes_[p].parent) {
      if (p == ancestor) return true;
    }
    return false;
  }

  // Whether any read of variable `usr` (outside node `except`) flows into data.
  bool UsesAsData(const std::string& usr, int except, std::set<std::string>& seen) const {
    if (!seen.insert(usr).second) return false;
    auto it = refs_.find(usr);
    if (it == refs_.end()) return false;
    for (int ref : it->second) {
      if (write_refs_.contains(ref) || IsInside(ref, except)) continue;
      if (ValueIsData(ref, seen)) return true;
    }
    return false;
  }

  // Follows the value of node `id` up the expression tree: comparisons, sleeps and waits are
  // timing; a variable it is stored in is followed; anything else (an argument, a return, an
  // element field) is data.
  bool ValueIsData(int id, std::set<std::string>& seen) const {
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

  // ---- I/O

  void FindIo() {
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      const CXCursorKind k = KindOf(i);
      if (k == CXCursor_VarDecl || k == CXCursor_CallExpr) {
        const std::string t = TypeSpelling(clang_getCursorType(Cur(i)));
        if (StartsWithAny(t, kFileStreamTypes)) {
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

  // ---- the declaration

  void ReadDeclared() {
    CXCursor m = FindMethod("properties");
    if (clang_Cursor_isNull(m)) return;
    // Positional or designated initializers of OpProperties, in the order of its fields.
    static const char* const kFields[] = {"kind", "parallelizable", "deterministic", "stateless"};
    std::map<std::string, CXCursor> values;
    std::vector<CXCursor> stack = {m};
    CXCursor init_list = clang_getNullCursor();
    std::string local;  // `OpProperties p; p.x = ...; return p;`
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
    auto read = [&](const char* field, DeclaredValue& out, bool fallback) {
      out.found = true;
      auto it = values.find(field);
      if (it == values.end()) {
        out.text = fallback ? "true" : "false";
        out.value = fallback;
        return;
      }
      std::string text;
      for (const std::string& t : internal::Tokens(unit_, it->second)) {
        if (!text.empty() && std::isalnum(static_cast<unsigned char>(text.back())) &&
            std::isalnum(static_cast<unsigned char>(t.front()))) {
          text += ' ';
        }
        text += t;
      }
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
    };
    read("parallelizable", report_.declared_parallelizable, false);
    read("deterministic", report_.declared_deterministic, true);
    read("stateless", report_.declared_stateless, true);
  }

  void Conclude() {
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
    std::stable_sort(report_.evidence.begin(), report_.evidence.end(),
                     [](const Evidence& a, const Evidence& b) {
                       if (a.property != b.property) return a.property < b.property;
                       return a.line < b.line;
                     });
  }

  struct MemberWrite {
    std::string usr;
    int node;
    std::string what;
    bool store = false;  // a plain store (`=`, atomic store()) whose result nobody reads
  };

  CXTranslationUnit unit_;
  OpReport& report_;
  std::set<std::string> classes_;  // USRs of the op class and its bases in this file
  std::vector<CXCursor> class_defs_;
  std::deque<Function> queue_;
  std::set<std::string> visited_;
  std::vector<Function> functions_;
  std::vector<Node> nodes_;
  std::map<std::string, std::vector<int>> refs_;      // variable USR -> nodes naming it
  std::map<std::string, std::vector<int>> assigned_;  // variable USR -> right-hand sides
  std::set<int> write_refs_;                          // nodes naming a variable being written
  std::set<std::string> written_;                     // USRs of members/statics written
  std::vector<MemberWrite> member_writes_;
};

// ---------------------------------------------------------------------------------------------
// Registrations

struct Registration {
  std::string name;
  CXCursor op_class;
};

bool SameFile(CXCursor c, CXFile main) {
  CXFile file = nullptr;
  clang_getExpansionLocation(clang_getCursorLocation(c), &file, nullptr, nullptr, nullptr);
  return file != nullptr && clang_File_isEqual(file, main) != 0;
}

void FindRegistrations(CXCursor parent, CXFile main, std::vector<Registration>& out) {
  for (CXCursor c : Children(parent)) {
    const CXCursorKind k = clang_getCursorKind(c);
    if (k == CXCursor_Namespace || k == CXCursor_LinkageSpec || k == CXCursor_UnexposedDecl) {
      FindRegistrations(c, main, out);
      continue;
    }
    if (k != CXCursor_VarDecl || !StartsWith(Spelling(c), "sluice_op_registrar_") ||
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

}  // namespace

OpsReport Inspect(const std::vector<std::string>& files, const InspectOptions& options) {
  internal::IndexPtr index(internal::ClangCheck(clang_createIndex(/*excludeDeclarationsFromPCH=*/0,
                                                                  /*displayDiagnostics=*/0),
                                                "creating an index"));
  OpsReport report;
  for (const std::string& file : files) {
    internal::UnitPtr unit = Parse(index.get(), file, options);
    CXFile main = internal::ClangCheck(clang_getFile(unit.get(), file.c_str()),
                                       fmt::format("finding {} in its translation unit", file));
    std::vector<Registration> registrations;
    FindRegistrations(clang_getTranslationUnitCursor(unit.get()), main, registrations);
    for (const Registration& r : registrations) {
      OpReport op;
      op.name = r.name;
      op.class_name = Spelling(r.op_class);
      const internal::Place place = PlaceOf(r.op_class);
      op.file = place.file;
      op.line = place.line;
      OpAnalyzer(unit.get(), r.op_class, op).Run();
      report.ops.push_back(std::move(op));
    }
  }
  return report;
}

}  // namespace sluice::inspect
