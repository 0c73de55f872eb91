// Measured read bandwidth of the devices holding a pipeline's files (never an assumed figure).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sluice/trace/trace.h"
#include "sluice/tracer/export.h"

// DataDirectories and MeasureDisks are exported from the shared library, though no public header
// declares them, for tracer_test.
namespace sluice::tracer::internal {

// The directories a pipeline config reads from: the fixed prefix of each list_files pattern,
// resolved against the config's directory.
SLUICE_TRACER_EXPORT std::vector<std::filesystem::path> DataDirectories(
    const std::string& config_text, const std::filesystem::path& config_path);

// Measures each distinct device under `dirs` once: a sequential read of up to `max_bytes` of
// the directory's files after asking the kernel to drop them from the page cache. Results are
// remembered per device in `cache_dir`/disks.json for a week and reused (marked cached).
SLUICE_TRACER_EXPORT std::vector<trace::DiskBandwidth> MeasureDisks(
    const std::vector<std::filesystem::path>& dirs, const std::filesystem::path& cache_dir,
    int64_t max_bytes = 64 << 20, double max_seconds = 1.0);

// $SLUICE_CACHE_DIR, else $XDG_CACHE_HOME/sluice, else ~/.cache/sluice.
std::filesystem::path DefaultCacheDir();

}  // namespace sluice::tracer::internal
