// Writing a whole file so that readers see the old content or the new, never a part.
#pragma once

#include <filesystem>
#include <string_view>

namespace sluice {

// Writes `text` to `path` through a temporary file in the same directory and a rename. Throws
// sluice::Error naming `what` ("the report") and the path when it cannot; leaves no temporary
// file behind.
void WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                         std::string_view what);

}  // namespace sluice
