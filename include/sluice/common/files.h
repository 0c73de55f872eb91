// Writing a whole file so that readers see the old content or the new, never a part.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "sluice/common/error.h"

namespace sluice {

// How an atomic write is done. The defaults are the careful ones.
struct AtomicWriteOptions {
  // What the file is, for messages: "{path}: cannot write {what}: {reason}" ("" gives
  // "{path}: cannot write: {reason}").
  std::string what;
  // The temporary file is "NAME.{temp_tag}.PID.N" beside the destination.
  std::string temp_tag = "tmp";
  // fsync before the rename, so that a crash or power cut leaves the old file or the new one,
  // never an empty one. Off only where a torn file is detected anyway or is cheap to lose.
  bool sync = true;
};

// A step of an atomic write that failed, so callers that word their own messages can.
enum class AtomicWriteStep { kCreate, kWrite, kSync, kReplace };

// Thrown by AtomicFile: the message is "{path}: cannot write {what}: {reason}" and names the
// destination, never the temporary file; step(), reason() and temp_path() let a caller reword it.
class AtomicWriteError : public Error {
 public:
  AtomicWriteError(const std::string& message, AtomicWriteStep step, std::string reason,
                   std::filesystem::path temp_path)
      : Error(message), step_(step), reason_(std::move(reason)), temp_path_(std::move(temp_path)) {}
  AtomicWriteStep step() const { return step_; }
  const std::string& reason() const { return reason_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  AtomicWriteStep step_;
  std::string reason_;
  std::filesystem::path temp_path_;
};

// One file written under a temporary name in the destination's directory and renamed into place
// by Commit(): readers see the old file or the new one, never a part. The temporary name is
// unique per call (process id, a per-process counter, created exclusively), so concurrent writers
// never share one; temporaries that dead processes left for the same destination are removed.
// The new file keeps the permissions of the one it replaces. Destroyed without Commit(), it
// removes its temporary file.
class AtomicFile {
 public:
  // Creates the temporary file. Throws AtomicWriteError (step kCreate) when it cannot.
  explicit AtomicFile(std::filesystem::path path, AtomicWriteOptions options = {});
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Appends `data`. Throws AtomicWriteError (kWrite).
  void Write(std::string_view data);
  // Syncs, keeps the old file's permissions, renames into place. Throws AtomicWriteError (kSync,
  // kReplace); the temporary file is removed on failure.
  void Commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }
  // The open descriptor of the temporary file, for writers that buffer on their own; valid
  // until Commit().
  int fd() const { return fd_; }

 private:
  [[noreturn]] void Throw(AtomicWriteStep step, int err);

  std::filesystem::path path_;
  std::filesystem::path temp_;
  AtomicWriteOptions options_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `text` to `path` through an AtomicFile. Throws sluice::Error naming `what`
// ("the report") and the path when it cannot; leaves no temporary file behind.
void WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                         AtomicWriteOptions options);
inline void WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                                std::string_view what) {
  AtomicWriteOptions options;
  options.what = std::string(what);
  WriteFileAtomically(path, text, options);
}

// The whole text of `path`; empty when it cannot be read (a caller that must tell the two apart
// checks the file first).
std::string ReadTextOrEmpty(const std::filesystem::path& path);

}  // namespace sluice
