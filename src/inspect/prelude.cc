// The precompiled system headers every parse with the same arguments shares (prelude.h).
#include "inspect/prelude.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "inspect/clang_api.h"
#include "inspect/parse.h"
#include "sluice/common/files.h"

namespace sluice::inspect::internal {
namespace {

namespace fs = std::filesystem;

// The directories a flag names in `args` ("-I dir" or "-Idir").
std::vector<fs::path> DirsOf(const std::vector<std::string>& args,
                             const std::vector<std::string>& flags) {
  std::vector<fs::path> dirs;
  for (size_t i = 0; i < args.size(); ++i) {
    for (const std::string& f : flags) {
      if (args[i] == f && i + 1 < args.size()) {
        dirs.emplace_back(args[i + 1]);
      } else if (args[i].starts_with(f) && args[i].size() > f.size()) {
        dirs.emplace_back(args[i].substr(f.size()));
      }
    }
  }
  return dirs;
}

// The compiler's own include directories: /usr/include, its multiarch directory and
// libstdc++'s.
std::vector<fs::path> CompilerDirs() {
  std::vector<fs::path> dirs = {"/usr/local/include", "/usr/include"};
  std::error_code ec;
  for (const auto& v : fs::directory_iterator("/usr/include/c++", ec)) dirs.push_back(v.path());
  for (const auto& e : fs::directory_iterator("/usr/include", ec)) {
    if (!e.path().filename().string().ends_with("-linux-gnu")) continue;
    dirs.push_back(e.path());
    for (const auto& v : fs::directory_iterator(e.path() / "c++", ec)) dirs.push_back(v.path());
  }
  return dirs;
}

std::optional<fs::path> FindUnder(const std::vector<fs::path>& dirs, const std::string& header) {
  std::error_code ec;
  for (const fs::path& d : dirs) {
    if (fs::is_regular_file(d / header, ec)) return fs::weakly_canonical(d / header, ec);
  }
  return std::nullopt;
}

// Standard C++ headers (no extension) first, then C headers, then the rest in order: a C
// library header such as jpeglib.h expects <cstdio> before it.
std::vector<std::string> Ordered(const std::vector<std::string>& headers) {
  std::vector<std::string> out;
  for (int pass = 0; pass < 3; ++pass) {
    for (const std::string& h : headers) {
      const bool std_header = h.find('.') == std::string::npos;
      const bool c_header = !std_header && h.ends_with(".h");
      if ((pass == 0 && std_header) || (pass == 1 && c_header) ||
          (pass == 2 && !std_header && !c_header)) {
        out.push_back(h);
      }
    }
  }
  return out;
}

const std::regex& IncludeLine() {
  static const std::regex re(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  return re;
}

}  // namespace

std::vector<std::string> SystemArguments(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool drop = false;
    for (const char* flag : {"-D", "-U", "-I", "-iquote"}) {
      if (!a.starts_with(flag)) continue;
      const bool joined = a.size() > std::string_view(flag).size();
      const std::string value = joined ? a.substr(std::string_view(flag).size())
                                       : (i + 1 < args.size() ? args[i + 1] : "");
      if ((a[1] == 'D' || a[1] == 'U') && value.starts_with("_")) break;  // the system's own
      drop = true;
      if (!joined) ++i;
      break;
    }
    if (!drop) out.push_back(a);
  }
  return out;
}

std::vector<std::string> SystemIncludes(const std::vector<std::string>& files,
                                        const std::vector<std::string>& args) {
  const std::vector<fs::path> user = DirsOf(args, {"-I", "-iquote"});
  std::vector<fs::path> system = DirsOf(args, {"-isystem"});
  for (const fs::path& d : CompilerDirs()) system.push_back(d);
  std::vector<std::string> out;
  std::set<std::string> seen_headers;
  std::set<fs::path> seen_files;
  std::vector<fs::path> todo(files.begin(), files.end());
  std::smatch m;
  while (!todo.empty()) {
    const fs::path file = todo.back();
    todo.pop_back();
    if (!seen_files.insert(file).second) continue;
    std::istringstream in(ReadTextOrEmpty(file));
    for (std::string line; std::getline(in, line);) {
      if (!std::regex_search(line, m, IncludeLine())) continue;
      const std::string h = m[2];
      // A project header: its own includes count too.
      std::vector<fs::path> dirs = user;
      if (m[1] == "\"") dirs.insert(dirs.begin(), file.parent_path());
      if (const std::optional<fs::path> found = FindUnder(dirs, h)) {
        todo.push_back(*found);
      } else if (m[1] == "<" && FindUnder(system, h) && seen_headers.insert(h).second) {
        out.push_back(h);
      }
    }
  }
  return out;
}

bool DefinesBeforeIncludes(const std::string& text) {
  static const std::regex define(R"(^\s*#\s*(define|undef)\b)");
  static const std::regex include(R"(^\s*#\s*include\b)");
  std::istringstream in(text);
  bool defined = false;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, define)) defined = true;
    if (defined && std::regex_search(line, include)) return true;
  }
  return false;
}

Prelude::Prelude(const std::vector<std::string>& files, const Cache* cache)
    : files_(files), cache_(cache) {
  if (files_.empty()) return;
  std::string tmpl = (fs::temp_directory_path() / "sluice-inspect-XXXXXX").string();
  if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
}

Prelude::~Prelude() {
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::vector<std::string> Prelude::ArgumentsFor(const std::string& file,
                                               const std::vector<std::string>& args) {
  if (dir_.empty() || files_.empty() || DefinesBeforeIncludes(ReadTextOrEmpty(file))) return {};
  const std::vector<std::string> base = SystemArguments(args);
  // Keyed without the -isystem directories: the first parse's (the inspected files') find the
  // headers, and a file parsed with fewer finds them in the precompiled header.
  std::string key;
  for (size_t i = 0; i < base.size(); ++i) {
    if (base[i] == "-isystem") {
      ++i;
    } else if (!base[i].starts_with("-isystem")) {
      key += base[i] + '\n';
    }
  }
  MutexLock lock(mu_);
  auto it = built_.find(key);
  if (it == built_.end()) {
    it = built_.emplace(key, Obtain(key, base, SystemIncludes(files_, args))).first;
  }
  if (it->second.empty()) return {};
  return {"-include-pch", it->second};
}

std::string Prelude::Obtain(const std::string& key, const std::vector<std::string>& base,
                            const std::vector<std::string>& needed) {
  // A header kept from an earlier run serves when it holds every header needed now; otherwise
  // the new one holds both sets, so the cache keeps one header per set of arguments.
  std::vector<std::string> headers = needed;
  const std::string entry_key = "prelude:" + key;
  const fs::path kept =
      cache_ == nullptr
          ? fs::path()
          : cache_->dir() / fmt::format("prelude-{:016x}.pch", std::hash<std::string>{}(key));
  if (cache_ != nullptr) {
    if (const std::optional<nlohmann::json> entry = cache_->Read(entry_key)) {
      try {
        const auto had = entry->at("headers").get<std::vector<std::string>>();
        const std::set<std::string> have(had.begin(), had.end());
        std::error_code ec;
        if (std::all_of(needed.begin(), needed.end(),
                        [&](const std::string& h) { return have.contains(h); }) &&
            fs::is_regular_file(kept, ec)) {
          return kept.string();
        }
        for (const std::string& h : had) {
          if (std::find(headers.begin(), headers.end(), h) == headers.end()) headers.push_back(h);
        }
      } catch (const std::exception&) {
        // Not the shape written below: build again.
      }
    }
  }
  headers = Ordered(headers);
  // Built in the cache when there is one that can be written, the header included: clang checks
  // that the files a precompiled header was made from are still there when it loads it.
  fs::path header = dir_ / fmt::format("prelude{}.h", built_.size());
  fs::path pch = dir_ / fmt::format("prelude{}.pch", built_.size());
  std::error_code ec;
  bool keep = false;
  if (cache_ != nullptr) {
    fs::create_directories(cache_->dir(), ec);
    keep = !ec && access(cache_->dir().c_str(), W_OK) == 0;
  }
  if (keep) {
    header = fs::path(kept).replace_extension(".h");
    pch = kept.string() + fmt::format(".{}.partial", getpid());
  }
  std::set<std::string> sources;
  bool built = Build(base, headers, header, pch, sources);
  if (!built) {  // without the headers a C library needs others first: the standard ones
    std::vector<std::string> standard;
    for (const std::string& h : headers) {
      if (h.find('.') == std::string::npos) standard.push_back(h);
    }
    headers = standard;
    built = Build(base, headers, header, pch, sources);
  }
  if (!built) {
    if (keep) fs::remove(pch, ec);
    return "";
  }
  if (!keep) return pch.string();
  // Renamed into place whole, then its entry: valid while the files it read keep their times.
  fs::rename(pch, kept, ec);
  if (ec) return pch.string();
  cache_->Write(entry_key, nlohmann::json{{"headers", headers}}, sources);
  return kept.string();
}

bool Prelude::Build(const std::vector<std::string>& args, const std::vector<std::string>& headers,
                    const fs::path& header, const fs::path& pch, std::set<std::string>& sources) {
  if (headers.empty()) return false;
  std::string text;
  for (const std::string& h : headers) text += "#include <" + h + ">\n";
  try {
    // Renamed into place: another run building the same header at once never reads half of it.
    AtomicWriteOptions options;
    options.what = "the inspector's precompiled header list";
    options.sync = false;
    WriteFileAtomically(header, text, options);
  } catch (const std::exception&) {
    return false;
  }
  // As a C++ header, whatever language the arguments name.
  std::vector<const char*> argv = {"-x", "c++-header"};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-x" && i + 1 < args.size()) {
      ++i;
    } else {
      argv.push_back(args[i].c_str());
    }
  }
  IndexPtr index(clang_createIndex(/*excludeDeclarationsFromPCH=*/0, /*displayDiagnostics=*/0));
  if (!index) return false;
  CXTranslationUnit unit = nullptr;
  const std::string path = header.string();
  if (clang_parseTranslationUnit2(
          index.get(), path.c_str(), argv.data(), static_cast<int>(argv.size()), nullptr, 0,
          CXTranslationUnit_Incomplete | CXTranslationUnit_SkipFunctionBodies |
              CXTranslationUnit_DetailedPreprocessingRecord,
          &unit) != CXError_Success ||
      unit == nullptr) {
    return false;
  }
  UnitPtr owned(unit);
  for (unsigned i = 0; i < clang_getNumDiagnostics(unit); ++i) {
    CXDiagnostic d = clang_getDiagnostic(unit, i);
    const bool error = clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error;
    clang_disposeDiagnostic(d);
    if (error) return false;
  }
  if (clang_saveTranslationUnit(unit, pch.c_str(), clang_defaultSaveOptions(unit)) !=
      CXSaveError_None) {
    return false;
  }
  sources = Inclusions(unit);
  return true;
}

}  // namespace sluice::inspect::internal
