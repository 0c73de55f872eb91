// The op API: built-in and user-defined ops derive from one of SourceOp, MapOp or StreamOp and
// register with SLUICE_REGISTER_OP("name", Class). Class must have a constructor taking OpArgs&.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/pipeline/element.h"
#include "sluice/pipeline/export.h"
#include "sluice/pipeline/registrar_name.h"

namespace sluice::pipeline {

enum class OpKind {
  kSource,  // produces elements from nothing (list_files, generate)
  kMap,     // turns each input element into zero or more outputs, independently
  kStream,  // consumes its input stream freely (batch, shuffle, cache): always sequential
};

// What an op declares about itself; `sluice inspect` checks these claims from the source.
struct OpProperties {
  OpKind kind = OpKind::kMap;
  bool parallelizable = false;  // may run on several worker threads at once (map ops only)
  bool deterministic = true;    // same outputs every epoch for the same inputs
  bool stateless = true;        // keeps no state between elements
  // Runs Python code under the interpreter's lock (the GIL): one call at a time in the whole
  // process, shared with the job's own Python threads. Such an op is never parallelizable.
  bool holds_gil = false;
};

// Typed, checked access to a stage's "args" object. Every error names the file, the stage and
// the key; keys an op never reads are reported as unknown by Finish(). It refers to `args`
// without copying: the JSON must outlive the OpArgs (as a Document's stages do).
class SLUICE_PIPELINE_EXPORT OpArgs {
 public:
  using Json = nlohmann::ordered_json;
  OpArgs(const Json& args, std::string file, std::string stage, std::string op,
         std::filesystem::path base_dir);

  bool Has(std::string_view key) const;
  int64_t Int(std::string_view key, std::optional<int64_t> fallback = std::nullopt);
  double Double(std::string_view key, std::optional<double> fallback = std::nullopt);
  bool Bool(std::string_view key, std::optional<bool> fallback = std::nullopt);
  std::string String(std::string_view key, std::optional<std::string> fallback = std::nullopt);
  std::vector<double> Doubles(std::string_view key,
                              std::optional<std::vector<double>> fallback = std::nullopt);
  std::vector<int64_t> Ints(std::string_view key,
                            std::optional<std::vector<int64_t>> fallback = std::nullopt);
  // An array of [number, number] pairs, such as [[10, 300], [20, 100]]; empty when absent.
  std::vector<std::pair<double, double>> Pairs(std::string_view key);
  // A path, resolved against the config file's directory when relative.
  std::filesystem::path Path(std::string_view key,
                             std::optional<std::string> fallback = std::nullopt);
  // A seed: the value of `key` when given, else one drawn from std::random_device.
  uint64_t Seed(std::string_view key);

  // Throws "FILE: stage 'S': args.KEY: MESSAGE".
  [[noreturn]] void Fail(std::string_view key, std::string_view message) const;
  // Rejects keys that were never read, listing the ones the op knows.
  void Finish() const;

  const std::string& stage() const { return stage_; }
  const std::string& op() const { return op_; }
  const std::filesystem::path& base_dir() const { return base_dir_; }
  // PipelineOptions::pin_memory, where a CUDA device can take it: an op that allocates its
  // outputs' buffers (batch) page-locks them.
  bool pin_memory() const { return pin_memory_; }
  void set_pin_memory(bool pin) { pin_memory_ = pin; }

 private:
  const Json* Find(std::string_view key, bool required);
  const Json& args_;
  std::string file_, stage_, op_;
  std::filesystem::path base_dir_;
  std::set<std::string, std::less<>> known_;
  bool pin_memory_ = false;
};

// Per-call context handed to op code.
struct OpContext {
  int64_t epoch = 0;  // 0-based epoch the element belongs to
  int worker = 0;     // index of the worker thread running the call
  std::string_view stage;
};

class SLUICE_PIPELINE_EXPORT Op {
 public:
  virtual ~Op() = default;
  virtual OpProperties properties() const = 0;
  // Called once before each epoch, with no call of the op in flight.
  virtual void BeginEpoch(int64_t /*epoch*/) {}
  // How many elements the op delivers in an epoch when `inputs` come in (a source ignores
  // `inputs`; nullopt: the input count is unknown). nullopt when it cannot be known before the
  // epoch runs (a filter). Gives a pipeline's length (len() in Python).
  virtual std::optional<int64_t> EpochOutputs(std::optional<int64_t> /*inputs*/) const {
    return std::nullopt;
  }
};

class SLUICE_PIPELINE_EXPORT SourceOp : public Op {
 public:
  // Produces the next element of the epoch; false at the end of the epoch.
  virtual bool Next(Element* out, const OpContext& ctx) = 0;
  // The names of the classes its labels index, in label order; empty when it labels nothing.
  virtual std::vector<std::string> ClassNames() const { return {}; }
};

class SLUICE_PIPELINE_EXPORT MapOp : public Op {
 public:
  // Appends the outputs for `in` (usually exactly one) to `out`. Called concurrently from
  // several threads when the op is parallelizable.
  virtual void Process(Element in, std::vector<Element>& out, const OpContext& ctx) = 0;
};

// The input stream of a StreamOp.
class SLUICE_PIPELINE_EXPORT Input {
 public:
  virtual ~Input() = default;
  // Pulls the next upstream element; false at the end of the epoch.
  virtual bool Next(Element* out) = 0;
};

class SLUICE_PIPELINE_EXPORT StreamOp : public Op {
 public:
  // Produces the next output, pulling from `in` as needed; false at the end of the epoch.
  virtual bool Next(Input& in, Element* out, const OpContext& ctx) = 0;
  // False when the coming epoch can be served without any input (a filled cache); checked
  // after BeginEpoch, and the stages upstream then do not run that epoch.
  virtual bool WantsInput() const { return true; }
};

using OpFactory = std::function<std::unique_ptr<Op>(OpArgs&)>;

// Name -> factory for every op, built-in and user-defined alike.
class SLUICE_PIPELINE_EXPORT OpRegistry {
 public:
  static OpRegistry& Global();
  // Registers `factory` under `name`; registering a name twice throws.
  void Register(const std::string& name, OpFactory factory);
  // Creates an op; throws naming the known ops when `name` is not registered.
  std::unique_ptr<Op> Create(const std::string& name, OpArgs& args) const;
  bool Contains(std::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, OpFactory, std::less<>> factories_;
};

namespace internal {
struct SLUICE_PIPELINE_EXPORT OpRegistrar {
  OpRegistrar(const char* name, OpFactory factory);
};
}  // namespace internal

}  // namespace sluice::pipeline

#define SLUICE_INTERNAL_CONCAT2(a, b) a##b
#define SLUICE_INTERNAL_CONCAT(a, b) SLUICE_INTERNAL_CONCAT2(a, b)

// Registers op class `Class` (constructible from OpArgs&) under `name` at static-init time.
#define SLUICE_REGISTER_OP(name, Class)                                                       \
  static const ::sluice::pipeline::internal::OpRegistrar SLUICE_INTERNAL_CONCAT(              \
      SLUICE_INTERNAL_OP_REGISTRAR_PREFIX, __COUNTER__)(                                      \
      name, [](::sluice::pipeline::OpArgs& args) -> std::unique_ptr<::sluice::pipeline::Op> { \
        return std::make_unique<Class>(args);                                                 \
      })
