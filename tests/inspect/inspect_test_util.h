// What the inspect tests share: where the sources and the corpus are, and the options the
// corpus is inspected with.
#pragma once

#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "sluice/inspect/inspect.h"

namespace sluice::inspect::corpus {

namespace fs = std::filesystem;

inline const fs::path kSource = SLUICE_SOURCE_DIR;
inline const fs::path kCorpus = kSource / "tests" / "data" / "inspect";
// The public headers, and the build's generated ones (sluice/pipeline/export.h).
inline const std::string kIncludes =
    fmt::format("-I {} -I {}", (kSource / "include").string(),
                (fs::path(SLUICE_BINARY_DIR) / "include").string());

inline InspectOptions CorpusOptions() {
  InspectOptions o;
  o.extra_args = {"-I" + (kSource / "include").string(),
                  "-I" + (fs::path(SLUICE_BINARY_DIR) / "include").string()};
  return o;
}

}  // namespace sluice::inspect::corpus
