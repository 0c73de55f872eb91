// Loading, validating and saving the pipeline config document.
#include "sluice/config/document.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/testing.h"
#include "sluice/common/error.h"
#include "sluice/common/files.h"
#include "sluice/common/strings.h"

namespace sluice::config {
namespace {

constexpr std::string_view kStageKeys[] = {
    "name", "op", "args", kKnobParallelism, kKnobBufferSize, kKnobDeterministic, "allow_reorder"};

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

[[noreturn]] void FailInternal(std::string_view what) {
  Fail("internal error: config rewrite: {}", what);
}

// ---------------------------------------------------------------------------------------------
// A locator of byte spans in JSON text that nlohmann has already accepted. It only skips over
// values, so it trusts the text's syntax and reports an internal error on a surprise.

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

struct Member {
  std::string name;  // the key, unescaped
  Span key;          // the quoted key
  Span value;
};

struct ObjectLayout {
  Span span;  // '{' .. '}' inclusive
  std::vector<Member> members;
};

struct ArrayLayout {
  Span span;  // '[' .. ']' inclusive
  std::vector<Span> elements;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Locator {
 public:
  explicit Locator(std::string_view text) : t_(text) {}

  size_t SkipSpace(size_t i) const {
    // nlohmann skips a UTF-8 byte order mark at the start.
    if (i == 0 && t_.starts_with("\xEF\xBB\xBF")) i = 3;
    while (i < t_.size() && IsSpace(t_[i])) ++i;
    return i;
  }

  // `i` is at an opening quote; returns the index after the closing one.
  size_t SkipString(size_t i) const {
    for (++i; i < t_.size(); ++i) {
      if (t_[i] == '\\') {
        ++i;
      } else if (t_[i] == '"') {
        return i + 1;
      }
    }
    FailInternal("unterminated string");
  }

  // `i` is at the first byte of a value; returns the index after its last byte.
  size_t SkipValue(size_t i) const {
    if (i >= t_.size()) FailInternal("value expected at end of text");
    if (t_[i] == '"') return SkipString(i);
    if (t_[i] == '{' || t_[i] == '[') {
      int depth = 0;
      while (i < t_.size()) {
        const char c = t_[i];
        if (c == '"') {
          i = SkipString(i);
          continue;
        }
        if (c == '{' || c == '[') ++depth;
        if ((c == '}' || c == ']') && --depth == 0) return i + 1;
        ++i;
      }
      FailInternal("unterminated object or array");
    }
    while (i < t_.size() && !IsSpace(t_[i]) && t_[i] != ',' && t_[i] != '}' && t_[i] != ']') ++i;
    return i;
  }

  ObjectLayout Object(size_t i) const {
    i = SkipSpace(i);
    if (i >= t_.size() || t_[i] != '{') FailInternal("object expected");
    ObjectLayout out;
    out.span.begin = i;
    i = SkipSpace(i + 1);
    while (i < t_.size() && t_[i] != '}') {
      Member m;
      m.key = {i, SkipString(i)};
      m.name = Json::parse(t_.substr(i, m.key.end - i)).get<std::string>();
      size_t colon = SkipSpace(m.key.end);
      if (colon >= t_.size() || t_[colon] != ':') FailInternal("':' expected");
      m.value.begin = SkipSpace(colon + 1);
      m.value.end = SkipValue(m.value.begin);
      out.members.push_back(std::move(m));
      i = SkipSpace(out.members.back().value.end);
      if (i < t_.size() && t_[i] == ',') i = SkipSpace(i + 1);
    }
    if (i >= t_.size()) FailInternal("unterminated object");
    out.span.end = i + 1;
    return out;
  }

  ArrayLayout Array(size_t i) const {
    i = SkipSpace(i);
    if (i >= t_.size() || t_[i] != '[') FailInternal("array expected");
    ArrayLayout out;
    out.span.begin = i;
    i = SkipSpace(i + 1);
    while (i < t_.size() && t_[i] != ']') {
      Span e{i, SkipValue(i)};
      out.elements.push_back(e);
      i = SkipSpace(e.end);
      if (i < t_.size() && t_[i] == ',') i = SkipSpace(i + 1);
    }
    if (i >= t_.size()) FailInternal("unterminated array");
    out.span.end = i + 1;
    return out;
  }

  // The last member called `key` (nlohmann keeps the last value of a repeated key), or null.
  static const Member* Find(const ObjectLayout& object, std::string_view key) {
    const Member* found = nullptr;
    for (const Member& m : object.members) {
      if (m.name == key) found = &m;
    }
    return found;
  }

  ArrayLayout Stages() const {
    const ObjectLayout top = Object(0);
    const Member* stages = Find(top, "stages");
    if (stages == nullptr) FailInternal("no stages array");
    return Array(stages->value.begin);
  }

  // The whitespace right before byte `i`.
  std::string_view SpaceBefore(size_t i) const {
    size_t b = i;
    while (b > 0 && IsSpace(t_[b - 1])) --b;
    return t_.substr(b, i - b);
  }

  std::string_view Text(Span s) const { return t_.substr(s.begin, s.end - s.begin); }

 private:
  std::string_view t_;
};

// The line break a whitespace run uses: CRLF files stay CRLF.
std::string_view LineBreakOf(std::string_view space) {
  return space.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
}

// The indentation after the last line break of a whitespace run.
std::string_view IndentOf(std::string_view space) {
  size_t nl = space.rfind('\n');
  return nl == std::string_view::npos ? space : space.substr(nl + 1);
}

// `value` on one line with a space after each ':' and ',' (the style of hand-written configs).
std::string InlineJson(const Json& value) {
  if (value.is_object() && !value.empty()) {
    std::string out = "{";
    for (const auto& [key, item] : value.items()) {
      if (out.size() > 1) out += ", ";
      out += Json(key).dump() + ": " + InlineJson(item);
    }
    return out + "}";
  }
  if (value.is_array() && !value.empty()) {
    std::string out = "[";
    for (const Json& item : value) {
      if (out.size() > 1) out += ", ";
      out += InlineJson(item);
    }
    return out + "]";
  }
  return value.dump();
}

// A stage object's text laid out like `like`, a stage object of the same document: members on
// their own lines with its indentation when its members are, otherwise on one line.
std::string StageText(const Locator& loc, const ObjectLayout& like, const Json& stage) {
  if (!stage.is_object() || stage.empty() || like.members.empty()) return InlineJson(stage);
  const Member& first = like.members.front();
  const std::string_view lead = loc.SpaceBefore(first.key.begin);
  const std::string_view colon = loc.Text({first.key.end, first.value.begin});  // e.g. ": " or ":"
  const std::string_view close = loc.SpaceBefore(like.span.end - 1);
  std::string out = "{";
  if (lead.find('\n') != std::string_view::npos) {
    const std::string_view nl = LineBreakOf(lead);
    bool first_member = true;
    for (const auto& [key, item] : stage.items()) {
      if (!first_member) out += ",";
      first_member = false;
      out +=
          fmt::format("{}{}{}{}{}", nl, IndentOf(lead), Json(key).dump(), colon, InlineJson(item));
    }
    return out + std::string(nl) + std::string(IndentOf(close)) + "}";
  }
  const std::string_view between =
      like.members.size() > 1 ? loc.SpaceBefore(like.members[1].key.begin) : " ";
  out += lead;
  bool first_member = true;
  for (const auto& [key, item] : stage.items()) {
    if (!first_member) out += fmt::format(",{}", between);
    first_member = false;
    out += Json(key).dump() + std::string(colon) + InlineJson(item);
  }
  return out + std::string(close) + "}";
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
  doc.original_ = doc.text_;
  try {
    doc.json_ = Json::parse(doc.text_);
  } catch (const Json::parse_error& e) {
    FailSyntax(origin, doc.text_, e);
  } catch (const Json::exception& e) {
    // A number too large for a double (out_of_range.406) is not a parse_error and has no
    // position; found by fuzz/config_fuzz.
    std::string reason = e.what();
    if (size_t end = reason.find("] "); reason.starts_with("[json.") && end != std::string::npos) {
      reason = reason.substr(end + 2);
    }
    Fail("{}: invalid JSON: {}", origin.string(), reason);
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
    if (s.contains(kKnobParallelism)) {
      const Json& v = s[kKnobParallelism];
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1024) {
        FailAt(&spec, kKnobParallelism,
               fmt::format("expected an integer from 1 to 1024, got {}", v.dump()));
      }
      spec.parallelism = v.get<int64_t>();
    }
    if (s.contains(kKnobBufferSize)) {
      const Json& v = s[kKnobBufferSize];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 24)) {
        FailAt(&spec, kKnobBufferSize,
               fmt::format("expected an integer from 0 to 16777216, got {}", v.dump()));
      }
      spec.buffer_size = v.get<int64_t>();
    }
    if (s.contains(kKnobDeterministic)) {
      if (!s[kKnobDeterministic].is_boolean()) {
        FailAt(&spec, kKnobDeterministic,
               fmt::format("expected true or false, got {}", s[kKnobDeterministic].dump()));
      }
      spec.deterministic = s[kKnobDeterministic].get<bool>();
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

void Document::Splice(size_t offset, size_t length, std::string_view replacement) {
  const size_t end = offset + length;
  // Edits this one overlaps or touches merge with it into one region.
  auto first = std::find_if(edits_.begin(), edits_.end(),
                            [&](const TextEdit& e) { return e.offset + e.length >= offset; });
  auto last = std::find_if(first, edits_.end(), [&](const TextEdit& e) { return e.offset > end; });
  size_t lo = offset;
  size_t hi = end;
  std::string original;
  if (first != last) {
    lo = std::min(lo, first->offset);
    hi = std::max(hi, std::prev(last)->offset + std::prev(last)->length);
  }
  size_t at = lo;
  for (auto e = first; e != last; ++e) {
    original.append(text_, at, e->offset - at);
    original += e->original;
    at = e->offset + e->length;
  }
  original.append(text_, at, hi - at);

  text_.replace(offset, length, replacement);
  const size_t merged_length = hi - lo - length + replacement.size();
  const auto shift =
      static_cast<std::ptrdiff_t>(replacement.size()) - static_cast<std::ptrdiff_t>(length);
  auto next = edits_.erase(first, last);
  for (auto e = next; e != edits_.end(); ++e) e->offset += shift;
  // An edit that restores the original bytes (a value set back, an inserted stage removed) is
  // no edit at all.
  if (std::string_view(text_).substr(lo, merged_length) != original) {
    edits_.insert(next, TextEdit{lo, merged_length, std::move(original)});
  }
}

template <typename Edit>
void Document::Transact(Edit&& edit) {
  std::string saved_text = text_;
  std::vector<TextEdit> saved_edits = edits_;
  Json saved_json = json_;
  try {
    edit();
    Validate();
    // A rewrite must never produce a file that differs from the document model.
    Json reparsed;
    try {
      reparsed = Json::parse(text_);
    } catch (const Json::parse_error& e) {
      FailInternal(fmt::format("edited text is not valid JSON: {}", e.what()));
    }
    if (reparsed != json_) FailInternal("edited text does not match the document");
  } catch (...) {
    text_ = std::move(saved_text);
    edits_ = std::move(saved_edits);
    json_ = std::move(saved_json);
    Validate();
    throw;
  }
}

void Document::SetKnob(std::string_view stage, std::string_view key, const Json& value) {
  const StageSpec& spec = Stage(stage);
  if (key != kKnobParallelism && key != kKnobBufferSize && key != kKnobDeterministic) {
    FailAt(&spec, key, "not a tunable knob (knobs: parallelism, buffer_size, deterministic)");
  }
  const size_t index = spec.index;
  Transact([&] {
    const Locator loc(text_);
    const ArrayLayout stages = loc.Stages();
    if (index >= stages.elements.size()) FailInternal("stage index out of range");
    const ObjectLayout object = loc.Object(stages.elements[index].begin);
    if (const Member* m = Locator::Find(object, key)) {
      Splice(m->value.begin, m->value.end - m->value.begin, value.dump());
    } else if (object.members.empty()) {
      Splice(object.span.begin + 1, 0, fmt::format("{}: {}", Json(key).dump(), value.dump()));
    } else {
      // After the last member, in its style: on a new line with its indentation when the
      // members are on separate lines, else inline; the key/value separator copied too.
      const Member& m = object.members.back();
      const std::string_view lead = loc.SpaceBefore(m.key.begin);
      const std::string_view colon = loc.Text({m.key.end, m.value.begin});
      std::string sep;
      if (lead.find('\n') != std::string_view::npos) {
        sep = fmt::format(",{}{}", LineBreakOf(lead), IndentOf(lead));
      } else if (object.members.size() > 1) {
        sep = fmt::format(",{}", lead);
      } else {
        sep = ", ";
      }
      Splice(m.value.end, 0, fmt::format("{}{}{}{}", sep, Json(key).dump(), colon, value.dump()));
    }
    json_["stages"][index][std::string(key)] = value;
  });
}

void Document::InsertStage(size_t index, const Json& stage) {
  if (!stage.is_object()) {
    Fail("{}: cannot insert a stage: expected a stage object, got {}", origin_.string(),
         stage.dump());
  }
  Transact([&] {
    const Locator loc(text_);
    const ArrayLayout stages = loc.Stages();
    const std::vector<Span>& el = stages.elements;
    if (el.empty()) FailInternal("empty stages array");
    index = std::min(index, el.size());
    // The bytes between two neighbouring stages, e.g. ", " or ",\n    ".
    std::string sep;
    if (el.size() > 1) {
      const size_t j = index == 0 ? 0 : std::min(index, el.size() - 1) - 1;
      sep = std::string(loc.Text({el[j].end, el[j + 1].begin}));
    } else {
      const std::string_view lead = loc.SpaceBefore(el[0].begin);
      sep = lead.find('\n') != std::string_view::npos
                ? fmt::format(",{}{}", LineBreakOf(lead), IndentOf(lead))
                : std::string(", ");
    }
    const ObjectLayout like = loc.Object(el[std::min(index, el.size() - 1)].begin);
    const std::string body = StageText(loc, like, stage);
    if (index < el.size()) {
      Splice(el[index].begin, 0, body + sep);
    } else {
      Splice(el.back().end, 0, sep + body);
    }
    Json& array = json_["stages"];
    array.insert(array.begin() + static_cast<std::ptrdiff_t>(index), stage);
  });
}

void Document::RemoveStage(std::string_view name) {
  const size_t index = Stage(name).index;
  Transact([&] {
    const Locator loc(text_);
    const std::vector<Span> el = loc.Stages().elements;
    if (index >= el.size()) FailInternal("stage index out of range");
    if (index + 1 < el.size()) {
      Splice(el[index].begin, el[index + 1].begin - el[index].begin, "");  // with the comma after
    } else if (index > 0) {
      Splice(el[index - 1].end, el[index].end - el[index - 1].end, "");  // with the comma before
    } else {
      Splice(el[index].begin, el[index].end - el[index].begin, "");  // Validate() rejects this
    }
    Json& array = json_["stages"];
    array.erase(array.begin() + static_cast<std::ptrdiff_t>(index));
  });
}

std::string Document::Dump() const { return text_; }

namespace {
std::function<void(const std::filesystem::path&)>& SaveHook() {
  static std::function<void(const std::filesystem::path&)> hook;
  return hook;
}
}  // namespace

void testing::SetSaveHookForTesting(std::function<void(const std::filesystem::path&)> hook) {
  SaveHook() = std::move(hook);
}

void Document::Save(const std::filesystem::path& path, const std::filesystem::path& backup) const {
  try {
    AtomicFile file(path);  // errors name the file the caller asked for, not the temporary one
    file.Write(text_);
    std::error_code ec;
    if (!backup.empty() && std::filesystem::is_regular_file(path, ec)) {
      std::filesystem::copy_file(path, backup, std::filesystem::copy_options::overwrite_existing,
                                 ec);
      if (ec) Fail("{}: cannot back up to {}: {}", path.string(), backup.string(), ec.message());
    }
    if (SaveHook()) SaveHook()(file.temp_path());
    file.Commit();
  } catch (const AtomicWriteError& e) {
    switch (e.step()) {
      case AtomicWriteStep::kCreate:
        Fail("{}: cannot write: {}", path.string(), e.reason());
      case AtomicWriteStep::kWrite:
      case AtomicWriteStep::kSync:
        Fail("{}: write failed: {}", path.string(), e.reason());
      case AtomicWriteStep::kReplace:
        Fail("{}: cannot replace: {}", path.string(), e.reason());
    }
    throw;
  }
}

std::string UniqueStageName(std::string_view base, const std::vector<std::string>& taken) {
  std::string name(base);
  for (int i = 2; std::find(taken.begin(), taken.end(), name) != taken.end(); ++i) {
    name = std::string(base) + std::to_string(i);
  }
  return name;
}

}  // namespace sluice::config
