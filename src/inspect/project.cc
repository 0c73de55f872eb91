// The project's translation units as summaries of the functions they define, found by the name
// a call uses, composed bottom-up and cached per file under BUILD_DIR/.sluice-inspect-cache/.
#include "inspect/project.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "inspect/op_analyzer.h"
#include "inspect/parse.h"
#include "sluice/common/error.h"
#include "sluice/common/files.h"

namespace sluice::inspect::internal {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Property PropertyFromName(const std::string& s) {
  for (Property p :
       {Property::kDeterministic, Property::kStateless, Property::kIo, Property::kRace}) {
    if (s == PropertyName(p)) return p;
  }
  throw std::invalid_argument("unknown property " + s);
}

// The definitions of functions, methods and constructors written in the unit's main file.
void Definitions(CXCursor parent, std::vector<CXCursor>& out) {
  for (CXCursor c : Children(parent)) {
    const CXCursorKind k = clang_getCursorKind(c);
    if (k == CXCursor_Namespace || k == CXCursor_LinkageSpec || k == CXCursor_ClassDecl ||
        k == CXCursor_StructDecl) {
      if (FromMainFile(c)) Definitions(c, out);  // a header's blocks define nothing here
    } else if ((k == CXCursor_FunctionDecl || k == CXCursor_CXXMethod ||
                k == CXCursor_Constructor) &&
               clang_isCursorDefinition(c) != 0 && FromMainFile(c)) {
      out.push_back(c);
    }
  }
}

}  // namespace

Project::Project(CXIndex index, const InspectOptions& options, Prelude* prelude)
    : index_(index),
      options_(options),
      prelude_(prelude),
      cache_(options.build_dir / ".sluice-inspect-cache") {
  const fs::path db = options.build_dir / "compile_commands.json";
  Json j;
  try {
    j = Json::parse(ReadTextOrEmpty(db));
  } catch (const Json::exception& e) {
    Fail("{}: not JSON: {}", db.string(), e.what());
  }
  if (!j.is_array()) Fail("{}: expected an array of compile commands", db.string());
  std::set<std::string> seen;
  for (const Json& entry : j) {
    if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string()) continue;
    fs::path file = entry["file"].get<std::string>();
    if (file.is_relative() && entry.contains("directory") && entry["directory"].is_string()) {
      file = fs::path(entry["directory"].get<std::string>()) / file;
    }
    const std::string path = CanonicalPath(file.string());
    if (seen.insert(path).second) files_.push_back(path);
  }
}

const FunctionSummary* Project::Find(const std::string& usr, const std::string& name,
                                     const std::string& from) {
  const std::string caller = CanonicalPath(from);
  const std::string needle = name + "(";
  for (bool searched = false;; searched = true) {
    if (auto it = summaries_.find(usr); it != summaries_.end()) {
      if (!uses_.empty()) {
        const std::set<std::string>& deps = file_deps_[summary_file_[usr]];
        uses_.back().insert(deps.begin(), deps.end());
      }
      return &it->second;
    }
    if (searched) return nullptr;
    for (const std::string& f : files_) {
      if (f == caller || loaded_.contains(f)) continue;
      auto t = texts_.find(f);
      if (t == texts_.end()) t = texts_.emplace(f, ReadTextOrEmpty(f)).first;
      if (t->second.find(needle) == std::string::npos) continue;
      Load(f);
      if (summaries_.contains(usr)) break;
    }
  }
}

void Project::Load(const std::string& file) {
  loaded_.insert(file);  // first: a cycle of calls between files ends here
  if (LoadCache(file)) return;
  BeginUses();
  std::set<std::string> usrs;
  try {
    usrs = Summarize(file);
  } catch (const Error&) {
    // A file that does not parse summarizes nothing: calls into it stay unresolved.
  }
  std::set<std::string> sources = EndUses();
  sources.insert(file);
  file_deps_[file] = std::move(sources);
  SaveCache(file, usrs);
}

std::set<std::string> Project::Summarize(const std::string& file) {
  UnitPtr owned;
  CXTranslationUnit unit = borrow_ ? borrow_(file) : nullptr;
  if (unit == nullptr) {
    owned = Parse(index_, file, options_, prelude_);
    unit = owned.get();
  }
  const std::set<std::string> headers = Inclusions(unit);
  uses_.back().insert(headers.begin(), headers.end());  // Load's BeginUses
  std::vector<CXCursor> defs;
  Definitions(clang_getTranslationUnitCursor(unit), defs);
  std::set<std::string> usrs;
  for (CXCursor def : defs) {
    OpReport scratch;
    FunctionSummary s = OpAnalyzer(unit, scratch, this).Summarize(def);
    const std::string usr = Usr(def);
    summaries_[usr] = std::move(s);
    summary_file_[usr] = file;
    usrs.insert(usr);
  }
  return usrs;
}

bool Project::LoadCache(const std::string& file) {
  const std::optional<Json> j = cache_.Read("summaries:" + file);
  if (!j) return false;
  try {
    std::map<std::string, FunctionSummary> loaded;
    for (const auto& [usr, f] : j->at("functions").items()) {
      FunctionSummary s;
      for (const Json& e : f.at("effects")) {
        s.effects.push_back({PropertyFromName(e.at("property").get<std::string>()),
                             e.at("file").get<std::string>(), e.at("line").get<int>(),
                             e.at("what").get<std::string>(), e.at("race").get<bool>()});
      }
      s.written_params = f.at("written_params").get<std::vector<int>>();
      loaded[usr] = std::move(s);
    }
    for (auto& [usr, s] : loaded) {
      summary_file_[usr] = file;
      summaries_[usr] = std::move(s);
    }
    for (const auto& [source, time] : j->at("sources").items()) file_deps_[file].insert(source);
    return true;
  } catch (const std::exception&) {
    return false;  // not the shape written below: parse again
  }
}

void Project::SaveCache(const std::string& file, const std::set<std::string>& usrs) const {
  Json functions = Json::object();
  for (const std::string& usr : usrs) {
    const FunctionSummary& s = summaries_.at(usr);
    Json effects = Json::array();
    for (const Effect& e : s.effects) {
      effects.push_back({{"property", PropertyName(e.property)},
                         {"file", e.file},
                         {"line", e.line},
                         {"what", e.what},
                         {"race", e.race}});
    }
    functions[usr] = {{"effects", std::move(effects)}, {"written_params", s.written_params}};
  }
  cache_.Write("summaries:" + file, Json{{"file", file}, {"functions", std::move(functions)}},
               file_deps_.at(file));
}

void Project::BeginUses() { uses_.emplace_back(); }

std::set<std::string> Project::EndUses() {
  std::set<std::string> out = std::move(uses_.back());
  uses_.pop_back();
  return out;
}

}  // namespace sluice::inspect::internal
