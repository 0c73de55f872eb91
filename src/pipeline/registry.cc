// Live pipelines, their observers, and loading the tracer plugin when SLUICE_TRACE is set (or the
// autotuner's when SLUICE_AUTOTUNE is).
//
// A job linked with the runtime is traced without code changes: when the environment variable
// SLUICE_TRACE names a trace file, the first pipeline the job creates loads the tracer
// (libsluice_tracer.so.MAJOR, next to this library or named by SLUICE_TRACER_LIB) with dlopen and
// calls its entry point, which registers an observer. The runtime never links the tracer.
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>  // std::call_once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "pipeline/internal/registry.h"
#include "sluice/common/log.h"
#include "sluice/pipeline/observer.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {
namespace {

Mutex g_live_mu;
// Never destroyed: pipelines may outlive static destruction order.
std::set<const Pipeline*>& Live() SLUICE_REQUIRES(g_live_mu) {
  static auto* live = new std::set<const Pipeline*>();
  return *live;
}

Mutex g_observers_mu;
std::vector<PipelineObserver*>& Observers() SLUICE_REQUIRES(g_observers_mu) {
  static auto* observers = new std::vector<PipelineObserver*>();
  return *observers;
}

std::vector<PipelineObserver*> CopyObservers() {
  MutexLock lock(g_observers_mu);
  return Observers();
}

// The directory holding this shared library, found from one of its own symbols.
std::filesystem::path ThisLibraryDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&ThisLibraryDir), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  return std::filesystem::path(info.dli_fname).parent_path();
}

// Loads plugin `file` (next to this library, or the path in `override_env`) and calls its
// `entry`. Failing must not stop the job: it says so through the warning sink (`what` names the
// feature) and the job runs without it.
void LoadPlugin(const char* file, const char* override_env, const char* entry_name,
                const char* what) {
  std::string lib;
  if (const char* explicit_lib = std::getenv(override_env); explicit_lib != nullptr) {
    lib = explicit_lib;
  } else {
    // The SONAME rather than the unversioned name: a runtime-only install has no development
    // symlink, and the libraries come from one build, so one major version.
    lib = (ThisLibraryDir() / file).string();
  }
  void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    Warn("{} is asked for but {} could not be loaded: {}", what, lib, why ? why : "?");
    return;
  }
  using Entry = void (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, entry_name));
  if (entry == nullptr) {
    const char* why = dlerror();
    Warn("{} has no {}: {}", lib, entry_name, why ? why : "?");
    return;
  }
  entry();
}

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

// Loads the tracer once per process when SLUICE_TRACE is set, or the autotuner (which traces
// too) when SLUICE_AUTOTUNE is set or a pipeline asks for it.
void MaybeLoadPlugins(bool autotune) {
  static std::once_flag tracer_once, autotune_once;
  if (autotune || EnvSet("SLUICE_AUTOTUNE")) {
    std::call_once(autotune_once, [] {
      LoadPlugin(SLUICE_AUTOTUNE_FILE_NAME, "SLUICE_AUTOTUNE_LIB", "sluice_autotune_autostart",
                 "autotuning");
    });
    return;
  }
  if (!EnvSet("SLUICE_TRACE")) return;
  std::call_once(tracer_once, [] {
    LoadPlugin(SLUICE_TRACER_FILE_NAME, "SLUICE_TRACER_LIB", "sluice_tracer_autostart",
               "SLUICE_TRACE");
  });
}

}  // namespace

void AddPipelineObserver(PipelineObserver* observer) {
  MutexLock lock(g_observers_mu);
  Observers().push_back(observer);
}

void RemovePipelineObserver(PipelineObserver* observer) {
  MutexLock lock(g_observers_mu);
  auto& v = Observers();
  v.erase(std::remove(v.begin(), v.end(), observer), v.end());
}

void ForEachLivePipeline(const std::function<void(const Pipeline&)>& fn) {
  MutexLock lock(g_live_mu);
  for (const Pipeline* p : Live()) fn(*p);
}

std::optional<std::vector<AppliedChange>> ApplyToLivePipeline(
    uint64_t id, const std::vector<KnobChange>& changes, double settle_seconds) {
  MutexLock lock(g_live_mu);
  for (const Pipeline* p : Live()) {
    // The registry holds the pipelines it was given; changing one is what Apply is for.
    if (p->id() == id) return const_cast<Pipeline*>(p)->Apply(changes, settle_seconds);
  }
  return std::nullopt;
}

namespace internal {

void RegisterPipeline(const Pipeline& pipeline, bool autotune) {
  {
    MutexLock lock(g_live_mu);
    Live().insert(&pipeline);
  }
  MaybeLoadPlugins(autotune);
  for (PipelineObserver* o : CopyObservers()) o->OnCreated(pipeline);
}

void UnregisterPipeline(const Pipeline& pipeline, const PipelineSnapshot& last) {
  {
    MutexLock lock(g_live_mu);
    Live().erase(&pipeline);
  }
  for (PipelineObserver* o : CopyObservers()) o->OnDestroyed(pipeline, last);
}

}  // namespace internal
}  // namespace sluice::pipeline
