// The pipeline config as a document: load, validate its shape, find a stage, set a knob, and
// save preserving everything else (key order and unknown keys).
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
  const std::string& text() const { return text_; }
  const Json& json() const { return json_; }

  std::string name() const;
  // Number of passes over the data; -1 repeats forever.
  int64_t epochs() const;
  const std::vector<StageSpec>& stages() const { return stages_; }
  // The stage called `name`; throws listing the stage names when there is none.
  const StageSpec& Stage(std::string_view name) const;
  // Non-fatal remarks (e.g. an unknown stage key that looks like a misspelt knob).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Sets `key` of stage `stage` to `value`, validating it as Load would.
  void SetKnob(std::string_view stage, std::string_view key, const Json& value);
  // The document as JSON text, keys in their original order, unknown keys kept.
  std::string Dump() const;
  // Writes Dump() to `path` atomically (temporary file, then rename).
  void Save(const std::filesystem::path& path) const;

 private:
  Document() = default;
  void Validate();
  [[noreturn]] void FailAt(const StageSpec* stage, std::string_view key,
                           std::string_view message) const;

  std::filesystem::path origin_;
  std::string text_;
  Json json_;
  std::vector<StageSpec> stages_;
  std::vector<std::string> warnings_;
};

}  // namespace sluice::config
