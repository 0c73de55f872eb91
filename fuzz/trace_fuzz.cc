// Fuzz target: the trace reader. Any input must either parse or be rejected with sluice::Error
// (absurd sizes before allocating for them); a parsed trace must write back to JSON that reads
// to the same trace, and export to Chrome trace-event JSON without failing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sluice/common/error.h"
#include "sluice/trace/io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::trace::Trace trace;
  try {
    trace = sluice::trace::ParseTrace(text, "fuzz/trace.json");
  } catch (const sluice::Error&) {
    return 0;  // rejected with a message
  }
  // What the reader accepted, the writer must write, and reading that back must be a fixed point.
  std::string once = sluice::trace::ToJson(trace);
  std::string twice = sluice::trace::ToJson(sluice::trace::ParseTrace(once, "fuzz/once.json"));
  if (once != twice) std::abort();
  (void)sluice::trace::ToChromeTrace(trace);
  return 0;
}
