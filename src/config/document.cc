// Loading, validating and saving the pipeline config document.
#include "sluice/config/document.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/common/error.h"
#include "sluice/common/strings.h"

namespace sluice::config {
namespace {

constexpr std::string_view kStageKeys[] = {
    "name", "op", "args", "parallelism", "buffer_size", "deterministic", "allow_reorder"};

// Turns nlohmann's parse_error into "FILE:LINE:COL: invalid JSON: REASON".
[[noreturn]] void FailSyntax(const std::filesystem::path& origin, const std::string& text,
                             const Json::parse_error& e) {
  const TextPosition pos =
      PositionOf(text, e.byte == 0 ? 0 : e.byte - 1);  // nlohmann counts from 1
  std::string reason = e.what();
  // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: " prefix.
  if (size_t at = reason.find("column "); at != std::string::npos) {
    if (size_t colon = reason.find(": ", at); colon != std::string::npos) {
      reason = reason.substr(colon + 2);
    }
  }
  Fail("{}:{}:{}: invalid JSON: {}", origin.string(), pos.line, pos.column, reason);
}

}  // namespace

Document Document::Load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("{}: cannot read config: {}", path.string(), std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) Fail("{}: cannot read config: {}", path.string(), std::strerror(errno));
  return Parse(text.str(), path);
}

Document Document::Parse(std::string text, const std::filesystem::path& origin) {
  Document doc;
  doc.origin_ = origin;
  doc.text_ = std::move(text);
  try {
    doc.json_ = Json::parse(doc.text_);
  } catch (const Json::parse_error& e) {
    FailSyntax(origin, doc.text_, e);
  }
  doc.Validate();
  return doc;
}

std::filesystem::path Document::base_dir() const {
  std::filesystem::path dir = origin_.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

void Document::FailAt(const StageSpec* stage, std::string_view key,
                      std::string_view message) const {
  if (stage == nullptr) Fail("{}: key '{}': {}", origin_.string(), key, message);
  if (stage->name.empty()) {
    Fail("{}: stage #{}: key '{}': {}", origin_.string(), stage->index + 1, key, message);
  }
  Fail("{}: stage '{}': key '{}': {}", origin_.string(), stage->name, key, message);
}

void Document::Validate() {
  stages_.clear();
  warnings_.clear();
  if (!json_.is_object()) {
    Fail("{}: expected a JSON object with a \"stages\" array at the top level", origin_.string());
  }
  if (json_.contains("name") && !json_["name"].is_string()) {
    FailAt(nullptr, "name", fmt::format("expected a string, got {}", json_["name"].dump()));
  }
  if (json_.contains("epochs")) {
    const Json& e = json_["epochs"];
    // An unsigned value above INT64_MAX would wrap (2^64-1 to -1, "forever"): reject it.
    const bool too_big =
        e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
    if (!e.is_number_integer() || too_big || (e.get<int64_t>() < 1 && e.get<int64_t>() != -1)) {
      FailAt(nullptr, "epochs",
             fmt::format("expected an integer >= 1, or -1 to repeat forever, got {}", e.dump()));
    }
  }
  if (!json_.contains("stages"))
    FailAt(nullptr, "stages", "missing: a config needs a stages array");
  const Json& stages = json_["stages"];
  if (!stages.is_array() || stages.empty()) {
    FailAt(nullptr, "stages", "expected a non-empty array of stage objects");
  }
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < stages.size(); ++i) {
    const Json& s = stages[i];
    StageSpec spec;
    spec.index = i;
    if (!s.is_object()) {
      FailAt(&spec, "stages", fmt::format("expected a stage object, got {}", s.dump()));
    }
    if (s.contains("name")) {
      if (!s["name"].is_string() || s["name"].get<std::string>().empty()) {
        FailAt(&spec, "name", fmt::format("expected a non-empty string, got {}", s["name"].dump()));
      }
      spec.name = s["name"].get<std::string>();
    }
    if (!s.contains("op")) FailAt(&spec, "op", "missing: every stage names its op");
    if (!s["op"].is_string()) {
      FailAt(&spec, "op", fmt::format("expected a string, got {}", s["op"].dump()));
    }
    spec.op = s["op"].get<std::string>();
    if (spec.name.empty()) {
      // An unnamed stage is called after its op, numbered when the op repeats.
      spec.name = spec.op;
      for (int n = 2; names.contains(spec.name); ++n) spec.name = fmt::format("{}_{}", spec.op, n);
    }
    if (!names.insert(spec.name).second) {
      FailAt(&spec, "name", "duplicate stage name: stage names must be unique");
    }
    if (s.contains("parallelism")) {
      const Json& v = s["parallelism"];
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1024) {
        FailAt(&spec, "parallelism",
               fmt::format("expected an integer from 1 to 1024, got {}", v.dump()));
      }
      spec.parallelism = v.get<int64_t>();
    }
    if (s.contains("buffer_size")) {
      const Json& v = s["buffer_size"];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 24)) {
        FailAt(&spec, "buffer_size",
               fmt::format("expected an integer from 0 to 16777216, got {}", v.dump()));
      }
      spec.buffer_size = v.get<int64_t>();
    }
    if (s.contains("deterministic")) {
      if (!s["deterministic"].is_boolean()) {
        FailAt(&spec, "deterministic",
               fmt::format("expected true or false, got {}", s["deterministic"].dump()));
      }
      spec.deterministic = s["deterministic"].get<bool>();
    }
    if (s.contains("allow_reorder")) {
      if (!s["allow_reorder"].is_boolean()) {
        FailAt(&spec, "allow_reorder",
               fmt::format("expected true or false, got {}", s["allow_reorder"].dump()));
      }
      spec.allow_reorder = s["allow_reorder"].get<bool>();
    }
    if (s.contains("args")) {
      if (!s["args"].is_object()) {
        FailAt(&spec, "args", fmt::format("expected an object, got {}", s["args"].dump()));
      }
      spec.args = s["args"];
    }
    for (const auto& [key, value] : s.items()) {
      if (std::find(std::begin(kStageKeys), std::end(kStageKeys), key) != std::end(kStageKeys)) {
        continue;
      }
      for (std::string_view known : kStageKeys) {
        if (EditDistance(key, known) <= 2) {
          warnings_.push_back(fmt::format(
              "{}: stage '{}': unknown key '{}' (did you mean '{}'?) is kept but has no effect",
              origin_.string(), spec.name, key, known));
          break;
        }
      }
    }
    stages_.push_back(std::move(spec));
  }
}

std::string Document::name() const {
  if (json_.contains("name")) return json_["name"].get<std::string>();
  return origin_.stem().string();
}

int64_t Document::epochs() const {
  return json_.contains("epochs") ? json_["epochs"].get<int64_t>() : 1;
}

const StageSpec& Document::Stage(std::string_view name) const {
  for (const StageSpec& s : stages_) {
    if (s.name == name) return s;
  }
  std::vector<std::string> names;
  for (const StageSpec& s : stages_) names.push_back(s.name);
  Fail("{}: no stage named '{}' (stages: {})", origin_.string(), name, fmt::join(names, ", "));
}

void Document::SetKnob(std::string_view stage, std::string_view key, const Json& value) {
  const StageSpec& spec = Stage(stage);
  if (key != kKnobParallelism && key != kKnobBufferSize && key != kKnobDeterministic) {
    FailAt(&spec, key, "not a tunable knob (knobs: parallelism, buffer_size, deterministic)");
  }
  Json saved = json_;
  json_["stages"][spec.index][std::string(key)] = value;
  try {
    Validate();
  } catch (...) {
    json_ = std::move(saved);
    Validate();
    throw;
  }
}

std::string Document::Dump() const { return json_.dump(2) + "\n"; }

void Document::Save(const std::filesystem::path& path) const {
  std::string text = Dump();
  std::filesystem::path tmp = path;
  // Unique per process and call, so concurrent saves never share a temporary file.
  static std::atomic<uint64_t> saves{0};
  tmp += fmt::format(".tmp.{}.{}", ::getpid(), saves.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    // Errors name the file the caller asked for, not the temporary one.
    if (!out) Fail("{}: cannot write: {}", path.string(), std::strerror(errno));
    out << text;
    out.flush();
    if (!out) {
      int err = errno;
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      Fail("{}: write failed: {}", path.string(), std::strerror(err));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    Fail("{}: cannot replace: {}", path.string(), ec.message());
  }
}

}  // namespace sluice::config
