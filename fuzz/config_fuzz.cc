// Fuzz target: the config parser and validator. Any input must either load or be rejected with
// sluice::Error; a loaded document must dump back to exactly the bytes it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sluice/common/error.h"
#include "sluice/config/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto doc = sluice::config::Document::Parse(text, "fuzz/config.json");
    if (doc.Dump() != text) std::abort();  // nothing edited: every byte kept
    for (const auto& s : doc.stages()) {
      if (&doc.Stage(s.name) != &s) std::abort();  // names are unique and found
      if (s.parallelism && *s.parallelism < 1) std::abort();
      if (s.buffer_size && *s.buffer_size < 0) std::abort();
    }
    (void)doc.name();
    (void)doc.epochs();
  } catch (const sluice::Error&) {
    // Rejected with a message: the expected outcome for most inputs.
  }
  return 0;
}
