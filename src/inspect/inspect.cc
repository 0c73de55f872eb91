// Parses op sources with libclang, finds SLUICE_REGISTER_OP registrations and classifies each
// op's processing code (Process / Next / BeginEpoch and what they call in the same file).
// The rules are described in docs/inspect.md.
#include "sluice/inspect/inspect.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "inspect/clang_api.h"
#include "inspect/op_analyzer.h"
#include "inspect/parse.h"
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

OpsReport Inspect(const std::vector<std::string>& files, const InspectOptions& options) {
  internal::IndexPtr index(internal::ClangCheck(clang_createIndex(/*excludeDeclarationsFromPCH=*/0,
                                                                  /*displayDiagnostics=*/0),
                                                "creating an index"));
  // Calls into the project's other files are followed through its compilation database.
  std::unique_ptr<internal::Project> project;
  if (!options.build_dir.empty() &&
      std::filesystem::exists(options.build_dir / "compile_commands.json")) {
    project = std::make_unique<internal::Project>(index.get(), options);
  }
  OpsReport report;
  for (const std::string& file : files) {
    internal::UnitPtr unit = internal::Parse(index.get(), file, options);
    CXFile main = internal::ClangCheck(clang_getFile(unit.get(), file.c_str()),
                                       fmt::format("finding {} in its translation unit", file));
    std::vector<internal::Registration> registrations;
    internal::FindRegistrations(clang_getTranslationUnitCursor(unit.get()), main, registrations);
    for (const internal::Registration& r : registrations) {
      OpReport op;
      op.name = r.name;
      op.class_name = internal::Spelling(r.op_class);
      const internal::Place place = internal::PlaceOf(r.op_class);
      op.file = place.file;
      op.line = place.line;
      internal::OpAnalyzer(unit.get(), r.op_class, op, project.get()).Run();
      report.ops.push_back(std::move(op));
    }
  }
  return report;
}

}  // namespace sluice::inspect
