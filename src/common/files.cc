// The one atomic file write: temporary file beside the destination, fsync, rename.
#include "sluice/common/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

namespace sluice {
namespace {

// Removes temporary files that an earlier write of `path` left when its process died between
// writing and renaming ("NAME.TAG.PID.N" whose PID is gone).
void RemoveStaleTemporaries(const std::filesystem::path& path, const std::string& tag) {
  const std::string prefix = path.filename().string() + "." + tag + ".";
  std::error_code ec;
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size() ||
        rest.find_first_not_of("0123456789.") != std::string::npos) {
      continue;
    }
    const long pid = std::strtol(rest.c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
  }
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path path, AtomicWriteOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
  RemoveStaleTemporaries(path_, options_.temp_tag);
  // Unique per process and call; O_EXCL makes it unique against anything else too (a process
  // of another PID namespace writing to the same directory).
  static std::atomic<uint64_t> writes{0};
  for (;;) {
    temp_ = path_;
    temp_ += fmt::format(".{}.{}.{}", options_.temp_tag, ::getpid(), writes.fetch_add(1));
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) break;
    if (errno != EEXIST) Throw(AtomicWriteStep::kCreate, errno);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::Throw(AtomicWriteStep step, int err) {
  const std::string reason = std::strerror(err);
  const std::string what = options_.what.empty() ? "" : " " + options_.what;
  throw AtomicWriteError(fmt::format("{}: cannot write{}: {}", path_.string(), what, reason), step,
                         reason, temp_);
}

void AtomicFile::Write(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Throw(AtomicWriteStep::kWrite, errno);
    done += static_cast<size_t>(n);
  }
}

void AtomicFile::Commit() {
  if (options_.sync && ::fsync(fd_) != 0) Throw(AtomicWriteStep::kSync, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) Throw(AtomicWriteStep::kWrite, errno);
  // The new file keeps the old one's permissions (a rename would install the default ones).
  struct stat old {};
  if (::stat(path_.c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
    ::chmod(temp_.c_str(), old.st_mode & 07777);
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) Throw(AtomicWriteStep::kReplace, errno);
  committed_ = true;
}

void WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                         AtomicWriteOptions options) {
  AtomicFile file(path, std::move(options));
  file.Write(text);
  file.Commit();
}

std::string ReadTextOrEmpty(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace sluice
