// Fuzz target: the config rewriter. The input's last 16 bytes choose up to three edits (set a
// knob, insert a cache stage, remove a stage) and the rest is the config text. Each edit either
// fails with sluice::Error leaving the document unchanged, or succeeds and then the written text
// parses again to exactly the expected document: the edit applied, every other stage and key
// unchanged, in the same order.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"

namespace {

using sluice::config::Document;
using sluice::config::Json;

struct Edit {
  uint8_t kind = 0;       // 0 set a knob, 1 insert a cache stage, 2 remove a stage
  uint16_t selector = 0;  // which stage (modulo the stage count)
  uint8_t knob = 0;       // parallelism, buffer_size, deterministic
  int8_t value = 0;
};

constexpr size_t kEdits = 3;
constexpr size_t kParamBytes = 1 + kEdits * 5;  // count, then per edit 1 + 2 + 1 + 1

[[noreturn]] void Check(const char* what) {
  std::fprintf(stderr, "rewrite_fuzz: %s\n", what);
  std::abort();
}

// Applies `e` to `doc`, returning the JSON the rewritten text must parse to, or nothing when
// the edit was rejected (then `doc` must be unchanged).
bool Apply(Document& doc, const Edit& e, int serial, Json& expected) {
  expected = doc.json();
  const size_t n = doc.stages().size();
  switch (e.kind % 3) {
    case 0: {
      if (n == 0) return false;
      const std::string name = doc.stages()[e.selector % n].name;
      const char* keys[] = {"parallelism", "buffer_size", "deterministic"};
      const char* key = keys[e.knob % 3];
      Json value = e.knob % 3 == 2 ? Json(e.value % 2 == 0) : Json(e.value);
      doc.SetKnob(name, key, value);
      expected["stages"][e.selector % n][key] = value;
      return true;
    }
    case 1: {
      const size_t index = e.selector % (n + 2);
      Json stage = {{"name", "fuzz_cache_" + std::to_string(serial)}, {"op", "cache"}};
      doc.InsertStage(index, stage);
      Json& stages = expected["stages"];
      stages.insert(stages.begin() + static_cast<std::ptrdiff_t>(std::min(index, n)), stage);
      return true;
    }
    default: {
      if (n == 0) return false;
      const size_t index = e.selector % n;
      doc.RemoveStage(doc.stages()[index].name);
      Json& stages = expected["stages"];
      stages.erase(stages.begin() + static_cast<std::ptrdiff_t>(index));
      return true;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kParamBytes) return 0;
  // Parameters come from the end so that a seed is a config with a few bytes appended.
  FuzzedDataProvider params(data + size - kParamBytes, kParamBytes);
  std::vector<Edit> edits(1 + params.ConsumeIntegral<uint8_t>() % kEdits);
  for (Edit& e : edits) {
    e.kind = params.ConsumeIntegral<uint8_t>();
    e.selector = params.ConsumeIntegral<uint16_t>();
    e.knob = params.ConsumeIntegral<uint8_t>();
    e.value = params.ConsumeIntegral<int8_t>();
  }
  std::string text(reinterpret_cast<const char*>(data), size - kParamBytes);

  std::optional<Document> doc;
  try {
    doc.emplace(Document::Parse(text, "fuzz/config.json"));
  } catch (const sluice::Error&) {
    return 0;
  }
  int serial = 0;
  for (const Edit& e : edits) {
    const std::string before_text = doc->Dump();
    const Json before_json = doc->json();
    Json expected;
    bool applied = false;
    try {
      applied = Apply(*doc, e, serial++, expected);
    } catch (const sluice::Error&) {
      if (doc->Dump() != before_text || doc->json() != before_json) {
        Check("a rejected edit changed the document");
      }
      continue;
    }
    if (!applied) continue;
    if (doc->json() != expected) Check("the edited document is not the expected one");
    std::optional<Document> again;
    try {
      again.emplace(Document::Parse(doc->Dump(), "fuzz/rewritten.json"));
    } catch (const sluice::Error& err) {
      std::fprintf(stderr, "rewrite_fuzz: %s\n", err.what());
      Check("the rewritten text does not load");
    }
    if (again->json() != expected) Check("the rewritten text parses to another document");
    // Outside the edits, every byte of the loaded text is kept.
    const std::string& now = doc->Dump();
    const std::string& original = doc->original_text();
    size_t pos = 0, orig_pos = 0;
    for (const auto& edit : doc->edits()) {
      if (edit.offset < pos || edit.offset + edit.length > now.size()) Check("bad edit span");
      const size_t same = edit.offset - pos;
      if (now.compare(pos, same, original, orig_pos, same) != 0)
        Check("a byte outside the edits changed");
      pos = edit.offset + edit.length;
      orig_pos += same + edit.original.size();
    }
    if (now.compare(pos, std::string::npos, original, orig_pos, std::string::npos) != 0) {
      Check("the tail outside the edits changed");
    }
  }
  return 0;
}
