// The trace reader's parser: nlohmann's SAX events built into a document, refusing arrays and
// nesting beyond what any trace has while parsing, and syntax errors with line and column.
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/common/strings.h"
#include "trace/internal/json.h"

namespace sluice::trace::internal {
namespace {

// Builds the document from nlohmann's SAX events, as its own DOM parser does, but refuses
// arrays longer and nesting deeper than any trace has while parsing, so a hostile document is
// stopped before it is built.
class LimitedDomBuilder {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit LimitedDomBuilder(const std::string& origin) : origin_(origin) {}

  bool null() { return Add(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return Add(Json(v)) != nullptr; }
  bool number_integer(number_integer_t v) { return Add(Json(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) { return Add(Json(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t&) { return Add(Json(v)) != nullptr; }
  bool string(string_t& v) { return Add(Json(std::move(v))) != nullptr; }
  bool binary(binary_t& v) { return Add(Json::binary(std::move(v))) != nullptr; }
  bool start_object(size_t) { return Push(Add(Json(Json::value_t::object))); }
  bool key(string_t& k) {
    frames_.back().key = std::move(k);
    return true;
  }
  bool end_object() {
    frames_.pop_back();
    return true;
  }
  bool start_array(size_t) { return Push(Add(Json(Json::value_t::array))); }
  bool end_array() {
    frames_.pop_back();
    return true;
  }
  bool parse_error(size_t position, const std::string&, const Json::exception& e) {
    error_position_ = position;
    error_ = e.what();
    return false;
  }

  Json& root() { return root_; }
  size_t error_position() const { return error_position_; }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    Json* node;
    size_t count = 0;  // elements so far (arrays)
    std::string key;   // the member being read (objects)
  };

  Json* Add(Json&& value) {
    if (frames_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Frame& top = frames_.back();
    if (top.node->is_array()) {
      if (top.count == kMaxArrayElements) {
        FailHere(fmt::format("more than {} elements, more than any trace has", kMaxArrayElements));
      }
      ++top.count;
      auto& array = top.node->get_ref<Json::array_t&>();
      array.push_back(std::move(value));
      return &array.back();
    }
    Json& slot = top.node->get_ref<Json::object_t&>()[top.key];
    slot = std::move(value);
    return &slot;
  }

  bool Push(Json* node) {
    if (frames_.size() == kMaxDepth) {
      FailHere(fmt::format("nested deeper than {} levels", kMaxDepth));
    }
    frames_.push_back(Frame{node});
    return true;
  }

  // Fails naming the container on top of the stack.
  [[noreturn]] void FailHere(std::string_view what) const {
    std::string path;
    for (size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.node->is_array()) {
        path += fmt::format("[{}]", f.count - 1);
      } else {
        if (!path.empty()) path += '.';
        path += f.key;
      }
    }
    if (path.empty()) path = "(top level)";
    sluice::Fail("{}: {}: {}", origin_, path, what);
  }

  const std::string& origin_;
  Json root_;
  std::vector<Frame> frames_;
  size_t error_position_ = 0;
  std::string error_;
};

// "ORIGIN:LINE:COL: invalid JSON: REASON", as the config loader reports syntax errors.
[[noreturn]] void FailSyntax(const std::string& origin, std::string_view text, size_t position,
                             std::string reason) {
  const TextPosition pos = PositionOf(text, position == 0 ? 0 : position - 1);  // counts from 1
  // Drop "[json.exception.parse_error.101] " and "parse error at line 1, column 2: ".
  if (reason.starts_with("[json.exception.")) {
    if (size_t close = reason.find("] "); close != std::string::npos) reason.erase(0, close + 2);
  }
  if (reason.starts_with("parse error")) {
    if (size_t at = reason.find("column "); at != std::string::npos) {
      if (size_t colon = reason.find(": ", at); colon != std::string::npos) {
        reason.erase(0, colon + 2);
      }
    }
  }
  Fail("{}:{}:{}: invalid JSON: {}", origin, pos.line, pos.column, reason);
}

}  // namespace

Json ParseLimited(std::string_view text, const std::string& origin) {
  LimitedDomBuilder builder(origin);
  if (!Json::sax_parse(text.data(), text.data() + text.size(), &builder)) {
    FailSyntax(origin, text, builder.error_position(), builder.error());
  }
  return std::move(builder.root());
}

}  // namespace sluice::trace::internal
