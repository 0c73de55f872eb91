// OpArgs (checked access to a stage's args) and the op registry.
#include "sluice/pipeline/op.h"

#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/common/error.h"
#include "sluice/common/strings.h"

namespace sluice::pipeline {

OpArgs::OpArgs(const Json& args, std::string file, std::string stage, std::string op,
               std::filesystem::path base_dir)
    : args_(args),
      file_(std::move(file)),
      stage_(std::move(stage)),
      op_(std::move(op)),
      base_dir_(std::move(base_dir)) {}

void OpArgs::Fail(std::string_view key, std::string_view message) const {
  sluice::Fail("{}: stage '{}': args.{}: {}", file_, stage_, key, message);
}

bool OpArgs::Has(std::string_view key) const { return args_.is_object() && args_.contains(key); }

const OpArgs::Json* OpArgs::Find(std::string_view key, bool required) {
  known_.emplace(key);
  if (args_.is_object()) {
    auto it = args_.find(key);
    if (it != args_.end()) return &*it;
  }
  if (required) {
    std::vector<std::string> given;
    if (args_.is_object()) {
      for (const auto& [k, v] : args_.items()) given.push_back(k);
    }
    std::string hint = given.empty() ? "" : fmt::format(" (given: {})", fmt::join(given, ", "));
    Fail(key, fmt::format("required by op '{}' but missing{}", op_, hint));
  }
  return nullptr;
}

int64_t OpArgs::Int(std::string_view key, std::optional<int64_t> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  if (!v->is_number_integer()) Fail(key, fmt::format("expected an integer, got {}", v->dump()));
  return v->get<int64_t>();
}

double OpArgs::Double(std::string_view key, std::optional<double> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  if (!v->is_number()) Fail(key, fmt::format("expected a number, got {}", v->dump()));
  return v->get<double>();
}

bool OpArgs::Bool(std::string_view key, std::optional<bool> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  if (!v->is_boolean()) Fail(key, fmt::format("expected true or false, got {}", v->dump()));
  return v->get<bool>();
}

std::string OpArgs::String(std::string_view key, std::optional<std::string> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  if (!v->is_string()) Fail(key, fmt::format("expected a string, got {}", v->dump()));
  return v->get<std::string>();
}

std::vector<double> OpArgs::Doubles(std::string_view key,
                                    std::optional<std::vector<double>> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  std::vector<double> out;
  if (v->is_number()) return {v->get<double>()};
  if (!v->is_array()) Fail(key, fmt::format("expected an array of numbers, got {}", v->dump()));
  for (const Json& x : *v) {
    if (!x.is_number()) Fail(key, fmt::format("expected an array of numbers, got {}", v->dump()));
    out.push_back(x.get<double>());
  }
  return out;
}

std::vector<std::pair<double, double>> OpArgs::Pairs(std::string_view key) {
  const Json* v = Find(key, false);
  if (v == nullptr) return {};
  const auto bad = [&] {
    Fail(key, fmt::format("expected an array of [number, number] pairs, got {}", v->dump()));
  };
  if (!v->is_array()) bad();
  std::vector<std::pair<double, double>> out;
  for (const Json& x : *v) {
    if (!x.is_array() || x.size() != 2 || !x[0].is_number() || !x[1].is_number()) bad();
    out.emplace_back(x[0].get<double>(), x[1].get<double>());
  }
  return out;
}

std::vector<int64_t> OpArgs::Ints(std::string_view key,
                                  std::optional<std::vector<int64_t>> fallback) {
  const Json* v = Find(key, !fallback.has_value());
  if (v == nullptr) return *fallback;
  std::vector<int64_t> out;
  if (v->is_number_integer()) return {v->get<int64_t>()};
  if (!v->is_array()) Fail(key, fmt::format("expected an array of integers, got {}", v->dump()));
  for (const Json& x : *v) {
    if (!x.is_number_integer()) {
      Fail(key, fmt::format("expected an array of integers, got {}", v->dump()));
    }
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::filesystem::path OpArgs::Path(std::string_view key, std::optional<std::string> fallback) {
  std::filesystem::path p = String(key, std::move(fallback));
  if (p.empty()) return p;
  return p.is_absolute() ? p : base_dir_ / p;
}

uint64_t OpArgs::Seed(std::string_view key) {
  const Json* v = Find(key, false);
  if (v == nullptr) {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (!v->is_number_integer())
    Fail(key, fmt::format("expected an integer seed, got {}", v->dump()));
  return static_cast<uint64_t>(v->get<int64_t>());
}

void OpArgs::Finish() const {
  if (args_.is_null()) return;
  if (!args_.is_object()) {
    sluice::Fail("{}: stage '{}': key 'args': expected an object, got {}", file_, stage_,
                 args_.dump());
  }
  for (const auto& [key, value] : args_.items()) {
    if (!known_.contains(key)) {
      std::vector<std::string> known(known_.begin(), known_.end());
      std::string listed = known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "));
      std::string guess = ClosestMatch(key, known);
      std::string hint = guess.empty() ? "" : fmt::format("did you mean '{}'? ", guess);
      Fail(key, fmt::format("unknown argument for op '{}' ({}known: {})", op_, hint, listed));
    }
  }
}

OpRegistry& OpRegistry::Global() {
  static OpRegistry* registry = new OpRegistry();  // never destroyed: used from static init
  return *registry;
}

void OpRegistry::Register(const std::string& name, OpFactory factory) {
  if (!factories_.emplace(name, std::move(factory)).second) {
    sluice::Fail("op '{}' is registered twice", name);
  }
}

std::unique_ptr<Op> OpRegistry::Create(const std::string& name, OpArgs& args) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string guess = ClosestMatch(name, Names(), 3);
    std::string hint = guess.empty() ? "" : fmt::format("did you mean '{}'? ", guess);
    sluice::Fail("unknown op '{}' ({}known ops: {})", name, hint, fmt::join(Names(), ", "));
  }
  return it->second(args);
}

bool OpRegistry::Contains(std::string_view name) const { return factories_.contains(name); }

std::vector<std::string> OpRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

namespace internal {
OpRegistrar::OpRegistrar(const char* name, OpFactory factory) {
  OpRegistry::Global().Register(name, std::move(factory));
}
}  // namespace internal

}  // namespace sluice::pipeline
