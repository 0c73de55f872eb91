// Parses op sources with libclang, finds SLUICE_REGISTER_OP registrations and classifies each
// op's processing code (Process / Next / BeginEpoch and what they call in the same file).
// The rules are described in docs/inspect.md.
#include "sluice/inspect/inspect.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "inspect/cache.h"
#include "inspect/clang_api.h"
#include "inspect/op_analyzer.h"
#include "inspect/parse.h"
#include "inspect/parse_ahead.h"
#include "inspect/project.h"
#include "inspect/registrations.h"

namespace sluice::inspect {

const char* PropertyName(Property p) {
  switch (p) {
    case Property::kDeterministic:
      return "deterministic";
    case Property::kStateless:
      return "stateless";
    case Property::kIo:
      return "io";
    case Property::kRace:
      return "race";
  }
  return "?";
}

namespace {

// The ops `unit` (parsed from `file`) registers, analyzed.
std::vector<OpReport> InspectUnit(CXTranslationUnit unit, const std::string& file,
                                  internal::Project* project) {
  CXFile main = internal::ClangCheck(clang_getFile(unit, file.c_str()),
                                     fmt::format("finding {} in its translation unit", file));
  std::vector<internal::Registration> registrations;
  internal::FindRegistrations(clang_getTranslationUnitCursor(unit), main, registrations);
  std::vector<OpReport> ops;
  for (const internal::Registration& r : registrations) {
    OpReport op;
    op.name = r.name;
    op.class_name = internal::Spelling(r.op_class);
    const internal::Place place = internal::PlaceOf(r.op_class);
    op.file = place.file;
    op.line = place.line;
    internal::OpAnalyzer(unit, r.op_class, op, project).Run();
    ops.push_back(std::move(op));
  }
  return ops;
}

// What a file's cached inspection is stored under: the file, as named (the report's places
// are spelled as the file was: src/x.cc and /work/src/x.cc give two entries), and every
// argument it is parsed with.
std::string CacheKey(const std::string& file, const InspectOptions& options) {
  std::string key = "ops:" + std::filesystem::absolute(file).lexically_normal().string();
  if (std::filesystem::path(file).is_relative()) key += "\nas " + file;
  for (const std::string& a : internal::ArgumentsFor(file, options)) key += "\n" + a;
  return key;
}

}  // namespace

OpsReport Inspect(const std::vector<std::string>& files, const InspectOptions& options) {
  internal::IndexPtr index(internal::ClangCheck(clang_createIndex(/*excludeDeclarationsFromPCH=*/0,
                                                                  /*displayDiagnostics=*/0),
                                                "creating an index"));
  // With a build directory, calls into the project's other files are followed through its
  // compilation database, and inspections are cached beside it.
  const bool with_project = !options.build_dir.empty() &&
                            std::filesystem::exists(options.build_dir / "compile_commands.json");
  std::optional<internal::Cache> cache;
  if (with_project) cache.emplace(options.build_dir / ".sluice-inspect-cache");
  // The system headers the files include, precompiled once for all the parses (and kept in the
  // cache for the next run): worth it when there is more than one file or a cache (one file
  // alone, building it costs what it saves).
  internal::Prelude prelude(
      options.precompile && (files.size() > 1 || with_project) ? files : std::vector<std::string>{},
      cache ? &*cache : nullptr);
  std::unique_ptr<internal::Project> project;
  if (with_project) project = std::make_unique<internal::Project>(index.get(), options, &prelude);
  std::vector<std::optional<std::vector<OpReport>>> done(files.size());
  std::vector<std::string> keys(files.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    if (cache) {
      keys[i] = CacheKey(files[i], options);
      if (const std::optional<nlohmann::json> entry = cache->Read(keys[i])) {
        try {
          done[i] = FromJson(entry->at("report"), keys[i]).ops;
          continue;
        } catch (const std::exception&) {
          // Not an ops report: inspect again.
        }
      }
    }
    todo.push_back(i);
  }
  // The files to inspect are parsed on threads of their own (parsing is most of the cost), a few
  // files ahead, and analyzed here, in order.
  std::vector<std::string> todo_files;
  for (size_t i : todo) todo_files.push_back(files[i]);
  const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  internal::ParseAhead parses(todo_files, options, &prelude, threads, 2 * threads);
  if (project) {
    project->BorrowUnitsFrom([&parses](const std::string& f) { return parses.Borrow(f); });
  }
  size_t taken = 0;
  OpsReport report;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!done[i]) {
      const std::unique_ptr<internal::ParsedUnit> parsed = parses.Take(taken++);
      if (project) project->BeginUses();
      done[i] = InspectUnit(parsed->unit.get(), files[i], project.get());
      if (cache) {
        std::set<std::string> sources = internal::Inclusions(parsed->unit.get());
        const std::set<std::string> used = project->EndUses();
        sources.insert(used.begin(), used.end());
        OpsReport one;
        one.ops = *done[i];
        cache->Write(keys[i], nlohmann::json{{"report", ToJson(one)}}, sources);
      }
    }
    for (OpReport& op : *done[i]) report.ops.push_back(std::move(op));
  }
  return report;
}

}  // namespace sluice::inspect
