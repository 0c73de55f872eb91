#include "sluice/common/files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "sluice/common/error.h"

namespace sluice {

void WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                         std::string_view what) {
  namespace fs = std::filesystem;
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const fs::path tmp = dir / fmt::format(".{}.{}.tmp", path.filename().string(), ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) Fail("{}: cannot write {}: {}", tmp.string(), what, std::strerror(errno));
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    if (!f) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      Fail("{}: cannot write {} (disk full?)", tmp.string(), what);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    Fail("{}: cannot write {}: {}", path.string(), what, ec.message());
  }
}

}  // namespace sluice
