// The compile arguments of an op's source and its parse with libclang.
#include "inspect/parse.h"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"

namespace sluice::inspect::internal {
namespace {

namespace fs = std::filesystem;

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
                                      "-fcf-protection",
                                      "-fvisibility"};  // no bearing on the code's meaning
  for (const char* d : kDrop) {
    if (a.starts_with(d)) return true;
  }
  return a.starts_with("-Werror=");
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

}  // namespace

namespace {

// The arguments of `file` from the compilation database of `options.build_dir`; `from_db`
// says whether it lists the file.
std::vector<std::string> DatabaseArguments(const std::string& file, const InspectOptions& options,
                                           bool& from_db) {
  std::vector<std::string> args;
  from_db = false;
  if (!options.build_dir.empty() && fs::exists(options.build_dir / "compile_commands.json")) {
    CXCompilationDatabase_Error err = CXCompilationDatabase_NoError;
    CXCompilationDatabase db =
        clang_CompilationDatabase_fromDirectory(options.build_dir.c_str(), &err);
    ClangCheck(err == CXCompilationDatabase_NoError ? CXError_Success : CXError_Failure,
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
          if (a.starts_with(flag) && a.size() > std::string_view(flag).size()) {
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
  return args;
}

}  // namespace

std::vector<std::string> ArgumentsFor(const std::string& file, const InspectOptions& options) {
  bool from_db = false;
  std::vector<std::string> args = DatabaseArguments(file, options, from_db);
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

std::string CanonicalPath(const std::string& file) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(file), ec);
  return ec ? file : p.string();
}

std::set<std::string> Inclusions(CXTranslationUnit unit) {
  std::set<std::string> files;
  clang_getInclusions(
      unit,
      [](CXFile included, CXSourceLocation*, unsigned, CXClientData data) {
        static_cast<std::set<std::string>*>(data)->insert(Take(clang_getFileName(included)));
      },
      &files);
  return files;
}

namespace {

// The errors of `unit`, formatted, and how many.
std::pair<int, std::string> Errors(CXTranslationUnit unit) {
  std::string errors;
  int n_errors = 0;
  const unsigned n = clang_getNumDiagnostics(unit);
  for (unsigned i = 0; i < n; ++i) {
    CXDiagnostic d = clang_getDiagnostic(unit, i);
    if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error) {
      ++n_errors;
      errors += Take(clang_formatDiagnostic(d, clang_defaultDiagnosticDisplayOptions()));
      errors += '\n';
    }
    clang_disposeDiagnostic(d);
  }
  return {n_errors, errors};
}

UnitPtr ParseWith(CXIndex index, const std::string& file, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  CXTranslationUnit unit = nullptr;
  ClangCheck(
      clang_parseTranslationUnit2(index, file.c_str(), argv.data(), static_cast<int>(argv.size()),
                                  nullptr, 0, CXTranslationUnit_DetailedPreprocessingRecord, &unit),
      fmt::format("parsing {}", file));
  return UnitPtr(ClangCheck(unit, fmt::format("parsing {}", file)));
}

}  // namespace

UnitPtr Parse(CXIndex index, const std::string& file, const InspectOptions& options,
              Prelude* prelude) {
  if (!fs::is_regular_file(file)) Fail("{}: no such file", file);
  std::vector<std::string> args = ArgumentsFor(file, options);
  if (prelude != nullptr) {
    std::vector<std::string> with = args;
    for (std::string& a : prelude->ArgumentsFor(file, args)) with.push_back(std::move(a));
    if (with.size() > args.size()) {
      UnitPtr unit;
      try {
        unit = ParseWith(index, file, with);
      } catch (const Error&) {
        // The precompiled header does not fit (clang found an option it was built without).
      }
      // With errors, the file is parsed again without the prelude: the errors are then the
      // compiler's own, whatever the prelude changed.
      if (unit && Errors(unit.get()).first == 0) return unit;
    }
  }
  UnitPtr unit = ParseWith(index, file, args);
  const auto [n_errors, errors] = Errors(unit.get());
  if (n_errors > 0) {
    Fail("{}: does not compile ({} error{}); the compiler says:\n{}", file, n_errors,
         n_errors == 1 ? "" : "s", errors);
  }
  return unit;
}

}  // namespace sluice::inspect::internal
