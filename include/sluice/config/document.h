// The pipeline config as a document: load, validate its shape, find a stage, set a knob, and
// save preserving everything else byte for byte (key order, unknown keys, indentation).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::config {

using Json = nlohmann::ordered_json;

// The knobs the tuner may set on a stage.
inline constexpr std::string_view kKnobParallelism = "parallelism";
inline constexpr std::string_view kKnobBufferSize = "buffer_size";
inline constexpr std::string_view kKnobDeterministic = "deterministic";
// Not a key: the name of a change that inserts a cache stage after a stage (tuner plans,
// Pipeline::Apply).
inline constexpr std::string_view kKnobCache = "cache";

// `base`, or `base` followed by the first number from 2 that makes it unlike every name in
// `taken` (the name of a stage the tuner or the runtime inserts).
std::string UniqueStageName(std::string_view base, const std::vector<std::string>& taken);

// A validated view of one stage of the document.
struct StageSpec {
  size_t index = 0;
  std::string name;
  std::string op;
  std::optional<int64_t> parallelism;  // absent: 1
  std::optional<int64_t> buffer_size;  // absent: 0 (synchronous)
  std::optional<bool> deterministic;   // absent: true
  bool allow_reorder = false;
  Json args = Json::object();
};

class Document {
 public:
  // Reads and validates `path`. Throws sluice::Error naming the file, and line and column for
  // syntax errors or stage and key for semantic ones.
  static Document Load(const std::filesystem::path& path);
  // Parses `text`; `origin` names it in messages and its directory anchors relative paths.
  static Document Parse(std::string text, const std::filesystem::path& origin);

  const std::filesystem::path& origin() const { return origin_; }
  // The directory relative paths in the config are resolved against.
  std::filesystem::path base_dir() const;
  // The current text: the loaded text with every edit applied.
  const std::string& text() const { return text_; }
  // The text as loaded or parsed, before any edit.
  const std::string& original_text() const { return original_; }
  const Json& json() const { return json_; }

  // One changed region: text()[offset, offset + length) replaced `original` of the loaded text.
  // Edits are sorted, disjoint and not adjacent; outside them text() equals the loaded text.
  struct TextEdit {
    size_t offset = 0;
    size_t length = 0;
    std::string original;
  };
  const std::vector<TextEdit>& edits() const { return edits_; }

  std::string name() const;
  // Number of passes over the data; -1 repeats forever.
  int64_t epochs() const;
  const std::vector<StageSpec>& stages() const { return stages_; }
  // The stage called `name`; throws listing the stage names when there is none.
  const StageSpec& Stage(std::string_view name) const;
  // Non-fatal remarks (e.g. an unknown stage key that looks like a misspelt knob).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Sets `key` of stage `stage` to `value`, validating it as Load would. Only the value's bytes
  // change; a new key goes after the stage's last member in the style of its neighbours. On
  // error the document is unchanged.
  void SetKnob(std::string_view stage, std::string_view key, const Json& value);
  // Inserts the stage object `stage` before stage `index` (at the end when `index` is past the
  // last stage), laid out like the neighbouring stages. Validated as Load would; on error the
  // document is unchanged.
  void InsertStage(size_t index, const Json& stage);
  // Removes the stage called `name` with its separating comma; all other bytes are kept.
  void RemoveStage(std::string_view name);
  // The document as JSON text: the loaded text with the edits applied (same as text()).
  std::string Dump() const;
  // Writes Dump() to `path` atomically (temporary file in the same directory, then rename).
  // When `backup` is not empty and `path` exists, the existing file is first copied to `backup`.
  void Save(const std::filesystem::path& path, const std::filesystem::path& backup = {}) const;

 private:
  Document() = default;
  void Validate();
  [[noreturn]] void FailAt(const StageSpec* stage, std::string_view key,
                           std::string_view message) const;
  // Replaces text_[offset, offset + length) with `replacement`, recording it in edits_.
  void Splice(size_t offset, size_t length, std::string_view replacement);
  // Runs `edit` (which changes text_ and json_), then validates and checks that the text parses
  // to json_; on any error restores the previous state and rethrows.
  template <typename Edit>
  void Transact(Edit&& edit);

  std::filesystem::path origin_;
  std::string original_;
  std::string text_;
  std::vector<TextEdit> edits_;
  Json json_;
  std::vector<StageSpec> stages_;
  std::vector<std::string> warnings_;
};

}  // namespace sluice::config
