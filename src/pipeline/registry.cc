// Live pipelines, their observers, and loading the tracer plugin when SLUICE_TRACE is set.
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
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "pipeline/internal/registry.h"
#include "sluice/common/log.h"
#include "sluice/pipeline/observer.h"
#include "sluice/pipeline/pipeline.h"

namespace sluice::pipeline {
namespace {

std::mutex g_live_mu;
// Never destroyed: pipelines may outlive static destruction order.
std::set<const Pipeline*>& Live() {
  static auto* live = new std::set<const Pipeline*>();  // guarded by g_live_mu
  return *live;
}

std::mutex g_observers_mu;
std::vector<PipelineObserver*>& Observers() {
  static auto* observers = new std::vector<PipelineObserver*>();  // guarded by g_observers_mu
  return *observers;
}

std::vector<PipelineObserver*> CopyObservers() {
  std::lock_guard lock(g_observers_mu);
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

// Loads the tracer once per process when SLUICE_TRACE is set. Failing to load it must not stop
// the job: it says so through the warning sink and the job runs untraced.
void MaybeLoadTracer() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* trace = std::getenv("SLUICE_TRACE");
    if (trace == nullptr || *trace == '\0') return;
    std::string lib;
    if (const char* explicit_lib = std::getenv("SLUICE_TRACER_LIB"); explicit_lib != nullptr) {
      lib = explicit_lib;
    } else {
      // The SONAME rather than the unversioned name: a runtime-only install has no
      // development symlink, and the two libraries come from one build, so one major version.
      lib = (ThisLibraryDir() / SLUICE_TRACER_FILE_NAME).string();
    }
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      Warn("SLUICE_TRACE is set but the tracer could not be loaded: {}", why ? why : "?");
      return;
    }
    using Entry = void (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "sluice_tracer_autostart"));
    if (entry == nullptr) {
      const char* why = dlerror();
      Warn("{} has no sluice_tracer_autostart: {}", lib, why ? why : "?");
      return;
    }
    entry();
  });
}

}  // namespace

void AddPipelineObserver(PipelineObserver* observer) {
  std::lock_guard lock(g_observers_mu);
  Observers().push_back(observer);
}

void RemovePipelineObserver(PipelineObserver* observer) {
  std::lock_guard lock(g_observers_mu);
  auto& v = Observers();
  v.erase(std::remove(v.begin(), v.end(), observer), v.end());
}

void ForEachLivePipeline(const std::function<void(const Pipeline&)>& fn) {
  std::lock_guard lock(g_live_mu);
  for (const Pipeline* p : Live()) fn(*p);
}

namespace internal {

void RegisterPipeline(const Pipeline& pipeline) {
  {
    std::lock_guard lock(g_live_mu);
    Live().insert(&pipeline);
  }
  MaybeLoadTracer();
  for (PipelineObserver* o : CopyObservers()) o->OnCreated(pipeline);
}

void UnregisterPipeline(const Pipeline& pipeline, const PipelineSnapshot& last) {
  {
    std::lock_guard lock(g_live_mu);
    Live().erase(&pipeline);
  }
  for (PipelineObserver* o : CopyObservers()) o->OnDestroyed(pipeline, last);
}

}  // namespace internal
}  // namespace sluice::pipeline
