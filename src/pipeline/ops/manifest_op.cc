// read_manifest: a source over the files a manifest lists, with a label per row. The manifest is
// CSV (a header row names the columns) or JSON Lines (an object per line); relative paths resolve
// against the manifest's folder. A label is a class index (an integer >= 0) or a class name (a
// string; names are indexed in sorted order, as ImageFolder does with folders).
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "file_source.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

struct Row {
  std::string path;
  std::optional<std::variant<int64_t, std::string>> label;
};

// One CSV record: commas separate fields; a field in double quotes may hold commas and "" for a
// quote. False when a quote is left open.
bool SplitCsv(std::string_view line, std::vector<std::string>* fields) {
  fields->assign(1, "");
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        fields->back() += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        fields->back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->emplace_back();
    } else {
      fields->back() += c;
    }
  }
  return !quoted;
}

class ReadManifestOp final : public FileListSource {
 public:
  explicit ReadManifestOp(OpArgs& args) : FileListSource(args) {
    manifest_ = args.Path("path");
    std::string format = args.String("format", "");
    if (format.empty()) format = manifest_.extension() == ".csv" ? "csv" : "jsonl";
    if (format != "csv" && format != "jsonl") {
      args.Fail("format", fmt::format("expected \"csv\" or \"jsonl\", got \"{}\"", format));
    }
    path_key_ = args.String("path_key", "path");
    label_key_ = args.String("label_key", "label");
    std::ifstream in(manifest_);
    if (!in) args.Fail("path", fmt::format("cannot open the manifest '{}'", manifest_.string()));
    std::vector<Row> rows = format == "csv" ? ReadCsv(in, args) : ReadJsonLines(in, args);
    if (rows.empty()) args.Fail("path", fmt::format("'{}' lists no files", manifest_.string()));
    Index(rows, args);
  }

 private:
  [[noreturn]] void FailAt(OpArgs& args, size_t line, std::string_view what) const {
    args.Fail("path", fmt::format("{}:{}: {}", manifest_.string(), line, what));
  }

  std::vector<Row> ReadCsv(std::istream& in, OpArgs& args) const {
    std::vector<Row> rows;
    std::string line;
    std::vector<std::string> header, fields;
    size_t number = 0, path_col = 0, label_col = 0;
    bool labelled = false;
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (!SplitCsv(line, header.empty() ? &header : &fields)) FailAt(args, number, "open quote");
      if (fields.empty()) {  // the header row
        auto find = [&](const std::string& key) {
          return std::find(header.begin(), header.end(), key);
        };
        if (find(path_key_) == header.end()) {
          FailAt(args, number,
                 fmt::format("the header has no column '{}' (args.path_key)", path_key_));
        }
        path_col = static_cast<size_t>(find(path_key_) - header.begin());
        labelled = !label_key_.empty() && find(label_key_) != header.end();
        if (!label_key_.empty() && !labelled) {
          FailAt(args, number,
                 fmt::format("the header has no column '{}' (args.label_key; \"\" "
                             "for an unlabelled manifest)",
                             label_key_));
        }
        label_col = labelled ? static_cast<size_t>(find(label_key_) - header.begin()) : 0;
        continue;
      }
      if (fields.size() != header.size()) {
        FailAt(args, number,
               fmt::format("{} fields, the header has {}", fields.size(), header.size()));
      }
      Row row{fields[path_col], std::nullopt};
      if (labelled) row.label = ParseLabel(fields[label_col], args, number);
      rows.push_back(std::move(row));
      fields.clear();
    }
    return rows;
  }

  std::variant<int64_t, std::string> ParseLabel(const std::string& text, OpArgs& args,
                                                size_t number) const {
    if (text.empty()) FailAt(args, number, "an empty label");
    if (text.find_first_not_of("0123456789") != std::string::npos) return text;  // a class name
    try {
      return static_cast<int64_t>(std::stoll(text));
    } catch (const std::exception&) {
      FailAt(args, number, fmt::format("label '{}' is out of range", text));
    }
  }

  std::vector<Row> ReadJsonLines(std::istream& in, OpArgs& args) const {
    std::vector<Row> rows;
    std::string line;
    size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!row.is_object()) FailAt(args, number, "not a JSON object");
      auto path = row.find(path_key_);
      if (path == row.end() || !path->is_string()) {
        FailAt(args, number, fmt::format("no string '{}' (args.path_key)", path_key_));
      }
      Row out{path->get<std::string>(), std::nullopt};
      if (!label_key_.empty()) {
        auto label = row.find(label_key_);
        if (label == row.end())
          FailAt(args, number, fmt::format("no '{}' (args.label_key)", label_key_));
        if (label->is_number_unsigned()) {
          out.label = label->get<int64_t>();
        } else if (label->is_string()) {
          out.label = label->get<std::string>();
        } else {
          FailAt(args, number, "a label is an integer >= 0 or a class name");
        }
      }
      rows.push_back(std::move(out));
    }
    return rows;
  }

  // Paths against the manifest's folder; labels as indices, names indexed in sorted order.
  void Index(const std::vector<Row>& rows, OpArgs& args) {
    std::vector<std::string> files, names;
    std::vector<int64_t> labels;
    const std::filesystem::path base = manifest_.parent_path();
    for (const Row& row : rows) {
      std::filesystem::path p(row.path);
      files.push_back((p.is_absolute() ? p : base / p).string());
      if (!row.label) continue;
      if (const auto* name = std::get_if<std::string>(&*row.label)) {
        names.push_back(*name);
      } else {
        labels.push_back(std::get<int64_t>(*row.label));
      }
    }
    if (!names.empty() && !labels.empty()) {
      args.Fail("path", fmt::format("'{}' mixes class indices and class names as labels",
                                    manifest_.string()));
    }
    std::vector<std::string> classes;
    if (!names.empty()) {
      ClassIndex index = IndexClasses(names);
      labels = std::move(index.labels);
      classes = std::move(index.classes);
    }
    SetFiles(std::move(files), std::move(labels), std::move(classes));
  }

  std::filesystem::path manifest_;
  std::string path_key_, label_key_;
};
SLUICE_REGISTER_OP("read_manifest", ReadManifestOp);

}  // namespace
}  // namespace sluice::pipeline
