// The what-if model: servers from the knobs, and one bound per server and per resource (the
// operational laws of Denning & Buzen, 1978). Analyze and Predict both build their limits here,
// so that the analysis, the tuner and the report can never disagree.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "analyzer/model.h"
#include "sluice/analyzer/analysis.h"
#include "sluice/common/error.h"

namespace sluice::analyzer {

const char* ToString(LimitKind kind) {
  switch (kind) {
    case LimitKind::kStage:
      return "stage";
    case LimitKind::kCpu:
      return "cpu";
    case LimitKind::kDisk:
      return "disk";
    case LimitKind::kConsumer:
      return "consumer";
    case LimitKind::kMemory:
      return "memory";
  }
  return "stage";
}

const char* ToString(Verdict verdict) {
  switch (verdict) {
    case Verdict::kHighly:
      return "highly";
    case Verdict::kModerately:
      return "moderately";
    case Verdict::kNot:
      return "not";
  }
  return "not";
}

namespace internal {

std::vector<double> EffectiveDemand(const std::vector<double>& demand, const Knobs& knobs) {
  std::vector<double> d = demand;
  if (knobs.cache_after) {
    for (size_t i = 0; i <= *knobs.cache_after && i < d.size(); ++i) d[i] = 0;
  }
  return d;
}

std::vector<Server> BuildServers(const std::vector<StageKnobs>& knobs,
                                 const std::vector<double>& wall, double step,
                                 const std::vector<bool>& fusible) {
  std::vector<Server> servers;
  auto sum = [&](const std::vector<size_t>& stages) {
    double w = 0;
    for (size_t i : stages) w += wall[i];
    return w;
  };
  auto capacity = [](int workers, double w) {
    return w > 0 ? workers / w : std::numeric_limits<double>::infinity();
  };
  std::vector<size_t> inline_run;  // inline stages waiting for the thread that pulls them
  for (size_t i = 0; i < knobs.size(); ++i) {
    const StageKnobs& k = knobs[i];
    const bool async = k.parallelism > 1 || k.buffer_size > 0;
    if (!async) {
      inline_run.push_back(i);
      continue;
    }
    if (k.parallelism > 1) {
      // Each worker pulls (running the inline run under the input lock), then runs the fused
      // maps and the op: the workers' time per output is all of it, and the lock admits one
      // pull at a time. The fused maps are the inline parallelizable maps directly above.
      std::vector<size_t> locked = inline_run;
      while (!locked.empty() && locked.back() < fusible.size() && fusible[locked.back()]) {
        locked.pop_back();
      }
      Server workers;
      workers.stages = inline_run;
      workers.stages.push_back(i);
      workers.owner = i;
      workers.workers = k.parallelism;
      workers.wall = sum(workers.stages);
      workers.capacity = capacity(workers.workers, workers.wall);
      if (!locked.empty() && std::isfinite(workers.capacity)) {
        // The workers queue for the lock: exact mean-value analysis of a closed network whose
        // customers are the workers, cycling through the lock (a FCFS station with demand L)
        // and their own work (a delay station with demand Z) (Reiser & Lavenberg, 1980):
        // R(n) = L (1 + Q(n-1)), X(n) = n / (R(n) + Z), Q(n) = X(n) R(n).
        const double lock = sum(locked);
        const double own = workers.wall - lock;
        double queue = 0, x = 0, response = lock;
        for (int n = 1; n <= workers.workers; ++n) {
          response = lock * (1 + queue);
          x = n / (response + own);
          queue = x * response;
        }
        workers.lock_wait = std::max(0.0, response - lock);
        workers.capacity = x;
      }
      servers.push_back(workers);
      if (!locked.empty()) {
        Server lock;
        lock.stages = locked;
        lock.owner = i;
        lock.input_lock = true;
        lock.wall = sum(lock.stages);
        lock.capacity = capacity(1, lock.wall);
        servers.push_back(lock);
      }
    } else {
      Server one;
      one.stages = inline_run;
      one.stages.push_back(i);
      one.owner = i;
      one.wall = sum(one.stages);
      one.capacity = capacity(1, one.wall);
      servers.push_back(one);
    }
    inline_run.clear();
  }
  Server consumer;
  consumer.stages = inline_run;
  consumer.owner = kConsumer;
  consumer.step = step;
  consumer.wall = sum(inline_run) + step;
  consumer.capacity = capacity(1, consumer.wall);
  servers.push_back(consumer);
  return servers;
}

std::vector<bool> Fusible(const Analysis& a) {
  std::vector<bool> fusible(a.stages.size(), false);
  for (size_t i = 1; i < a.stages.size(); ++i)
    fusible[i] = a.stages[i].parallelizable && a.stages[i].fusible;
  return fusible;
}

double TurnWait(const StageAnalysis& s, const StageKnobs& k) {
  if (k.parallelism <= 1 || !k.ordered) return 0;
  if (s.parallelism <= 1 || !s.ordered || s.turn_wait_demand <= 0 || s.wall_demand <= 0) {
    return 0;  // never measured: unknown, taken as none
  }
  // With p workers emitting in order, an element waits for the slowest of the p - 1 elements
  // ahead of it that started before it; the first-order term of that wait grows as (1 - 1/p)
  // of the stage's wall time, with the factor kappa fitted to the measured wait.
  const double kappa = s.turn_wait_demand / (s.wall_demand * (1 - 1.0 / s.parallelism));
  return kappa * s.wall_demand * (1 - 1.0 / k.parallelism);
}

}  // namespace internal

namespace {

using internal::Bytes;
using internal::Duration;
using internal::kConsumer;
using internal::Num;
using internal::Percent;
using internal::Quoted;
using internal::Server;

// The words for one server's limit: its stages, the heaviest of them, and the clauses every
// sentence shares.
class ServerWords {
 public:
  ServerWords(const Analysis& a, const std::vector<double>& wall, const std::vector<double>& cpu,
              const Server& s)
      : a_(a), wall_(wall), s_(s) {
    per = " per " + a.output_noun;
    at_most = fmt::format(": at most {} {}/s", Num(s.capacity), internal::Plural(a.output_noun));
    // The heaviest stage is the one to act on.
    heaviest = s.stages.empty() ? kConsumer : s.stages.front();
    for (size_t i : s.stages) {
      if (wall[i] > wall[heaviest]) heaviest = i;
      stage_wall += wall[i];
      stage_cpu += cpu[i];
    }
  }

  std::string Name(size_t i) const { return a_.stages[i].name; }
  std::string Described(size_t i) const {
    return fmt::format("'{}' ({})", Name(i), a_.stages[i].op);
  }
  // The server's stages but `except`.
  std::vector<std::string> Others(size_t except) const {
    std::vector<std::string> names;
    for (size_t i : s_.stages) {
      if (i != except) names.push_back(Name(i));
    }
    return names;
  }
  // Sleep-, I/O- or lock-bound work shows as wall time well above its CPU time.
  static std::string MostlyWaits(double w, double c) {
    return c < 0.5 * w ? fmt::format(", only {} of it CPU (it mostly waits: I/O, sleep, locks)",
                                     Duration(c))
                       : std::string();
  }
  // "(2 ms in 'decode')": the heaviest stage's share of the server's wall time.
  std::string HeaviestShare() const {
    return fmt::format("{} in {}", Duration(wall_[heaviest]), Quoted({Name(heaviest)}));
  }

  std::string per, at_most;
  size_t heaviest = kConsumer;
  double stage_wall = 0, stage_cpu = 0;

 private:
  const Analysis& a_;
  const std::vector<double>& wall_;
  const Server& s_;
};

// The consumer's thread: its training step, or the inline stages it runs itself.
void ConsumerLimit(const Server& s, const ServerWords& w, Limit& limit) {
  if (s.stages.empty() || s.step >= w.stage_wall) {
    limit.kind = LimitKind::kConsumer;
    if (s.stages.empty()) {
      limit.why = fmt::format("the consumer spends {}{} between Next() calls (its training step){}",
                              Duration(s.step), w.per, w.at_most);
    } else {
      limit.why = fmt::format(
          "the consumer's thread spends {}{} in its training step and {} running the inline "
          "stage{} {} itself{}",
          Duration(s.step), w.per, Duration(w.stage_wall), s.stages.size() > 1 ? "s" : "",
          Quoted(limit.stages), w.at_most);
    }
    return;
  }
  limit.stage = w.Name(w.heaviest);
  const std::string step =
      s.step > 0 ? fmt::format(", plus {} in the training step", Duration(s.step)) : "";
  if (s.stages.size() == 1) {
    limit.why = fmt::format(
        "stage {} runs inline on the consumer's thread and needs {} of wall time{}{}{}{}",
        w.Described(w.heaviest), Duration(w.stage_wall), w.per,
        ServerWords::MostlyWaits(w.stage_wall, w.stage_cpu), step, w.at_most);
  } else {
    limit.why = fmt::format(
        "stage {} runs inline on the consumer's thread with {}; together they need {} of wall "
        "time{} ({}){}{}{}",
        w.Described(w.heaviest), Quoted(w.Others(w.heaviest)), Duration(w.stage_wall), w.per,
        w.HeaviestShare(), ServerWords::MostlyWaits(w.stage_wall, w.stage_cpu), step, w.at_most);
  }
}

// The inline stages a parallel stage's workers pull under their input lock, one at a time.
void InputLockLimit(const std::vector<StageKnobs>& knobs, const Server& s, const ServerWords& w,
                    Limit& limit) {
  limit.stage = w.Name(w.heaviest);
  const std::string lock = fmt::format("the input lock of {}'s {} workers",
                                       Quoted({w.Name(s.owner)}), knobs[s.owner].parallelism);
  if (s.stages.size() == 1) {
    limit.why = fmt::format(
        "stage {} runs inline under {}, one element at a time, and needs {} of wall time{}{}{}",
        w.Described(w.heaviest), lock, Duration(w.stage_wall), w.per,
        ServerWords::MostlyWaits(w.stage_wall, w.stage_cpu), w.at_most);
  } else {
    limit.why = fmt::format(
        "stage {} runs inline under {} with {}, one element at a time; together they need {} "
        "of wall time{} ({}){}{}",
        w.Described(w.heaviest), lock, Quoted(w.Others(w.heaviest)), Duration(w.stage_wall), w.per,
        w.HeaviestShare(), ServerWords::MostlyWaits(w.stage_wall, w.stage_cpu), w.at_most);
  }
}

// An async stage's workers, running the inline stages upstream of it as they pull. With more
// than one worker, adding workers helps, so the async stage is the one named.
void WorkersLimit(const Analysis& a, const std::vector<double>& wall, const Server& s,
                  const ServerWords& w, Limit& limit) {
  const size_t owner = s.owner;
  const std::string workers =
      s.workers > 1 ? fmt::format("{} workers", s.workers) : std::string("1 worker");
  const double turn = wall[owner] - a.stages[owner].wall_demand;
  const std::string turn_wait =
      turn > 0 ? fmt::format(", {} of it waiting for their turn to emit in order", Duration(turn))
               : "";
  if (s.stages.size() == 1) {
    limit.stage = w.Name(owner);
    limit.why = fmt::format("stage {} runs on {} and needs {} of wall time{}{}{}{}",
                            w.Described(owner), workers, Duration(w.stage_wall), w.per, turn_wait,
                            ServerWords::MostlyWaits(w.stage_wall - turn, w.stage_cpu), w.at_most);
  } else if (s.workers > 1 || w.heaviest == owner) {
    limit.stage = w.Name(owner);
    // Only worth a clause when queueing for the lock costs at least 1 % of the rate.
    const std::string lock_wait =
        s.lock_wait > 0.01 * w.stage_wall
            ? fmt::format("; each worker also waits {}{} for the input lock", Duration(s.lock_wait),
                          w.per)
            : "";
    limit.why = fmt::format(
        "stage {} runs on {}, which also run{} {} inline, and needs {} of wall time{} ({} in "
        "{}){}{}{}{}",
        w.Described(owner), workers, s.workers > 1 ? "" : "s", Quoted(w.Others(owner)),
        Duration(w.stage_wall), w.per, Duration(wall[owner]), Quoted({w.Name(owner)}), turn_wait,
        ServerWords::MostlyWaits(w.stage_wall - turn, w.stage_cpu), lock_wait, w.at_most);
  } else {
    limit.stage = w.Name(w.heaviest);
    limit.why = fmt::format(
        "stage {} runs inline on the worker of {}, a thread it shares with {}; together they need "
        "{} of wall time{} ({}){}{}",
        w.Described(w.heaviest), Quoted({w.Name(owner)}), Quoted(w.Others(w.heaviest)),
        Duration(w.stage_wall), w.per, w.HeaviestShare(),
        ServerWords::MostlyWaits(w.stage_wall, w.stage_cpu), w.at_most);
  }
}

// A Python op among the stages a bound covers: the GIL is why more threads cannot lift it.
void GilReason(const Analysis& a, Limit& limit) {
  std::vector<std::string> python;
  for (const StageAnalysis& st : a.stages) {
    if (st.holds_gil &&
        std::find(limit.stages.begin(), limit.stages.end(), st.name) != limit.stages.end()) {
      python.push_back(st.name);
    }
  }
  if (python.empty()) return;
  limit.why += fmt::format(
      "; {} {} a Python op and holds the GIL, the interpreter's lock: one call at a time in the "
      "whole process, taking turns with the training loop's own Python code, so more workers "
      "cannot help (move the work into a built-in op, or make fewer, larger calls)",
      Quoted(python), python.size() > 1 ? "are each" : "is");
}

// The bound one server puts on the pipeline, with its sentence.
Limit ServerLimit(const Analysis& a, const std::vector<StageKnobs>& knobs,
                  const std::vector<double>& wall, const std::vector<double>& cpu,
                  const Server& s) {
  const ServerWords words(a, wall, cpu, s);
  Limit limit;
  limit.kind = LimitKind::kStage;
  limit.outputs_per_s = s.capacity;
  for (size_t i : s.stages) limit.stages.push_back(words.Name(i));
  if (s.owner == kConsumer) {
    ConsumerLimit(s, words, limit);
  } else if (s.input_lock) {
    InputLockLimit(knobs, s, words, limit);
  } else {
    WorkersLimit(a, wall, s, words, limit);
  }
  GilReason(a, limit);
  return limit;
}

// Elements a configuration holds in flight: an async stage's queue and one per worker.
double InFlightBytes(const Analysis& a, const std::vector<StageKnobs>& knobs) {
  double bytes = 0;
  for (size_t i = 0; i < knobs.size(); ++i) {
    const StageKnobs& k = knobs[i];
    if (k.parallelism > 1 || k.buffer_size > 0) {
      bytes += (std::max<double>(k.buffer_size, 1) + k.parallelism) * a.stages[i].bytes_per_element;
    }
  }
  return bytes;
}

}  // namespace

Knobs CurrentKnobs(const Analysis& analysis) {
  Knobs knobs;
  for (const StageAnalysis& s : analysis.stages) {
    knobs.stages.push_back({s.parallelism, s.buffer_size, s.ordered});
  }
  return knobs;
}

Resources CurrentResources(const Analysis& analysis) {
  Resources r;
  r.cores = analysis.cores;
  r.memory_bytes = analysis.memory_bytes;
  r.disk_mb_per_s = analysis.disk_mb_per_s;
  return r;
}

namespace {

// `knobs` checked against the pipeline; a sequential stage's parallelism is taken as 1 (with a
// note in `pred`).
std::vector<StageKnobs> CheckedKnobs(const Analysis& a, const Knobs& knobs, Prediction& pred) {
  const size_t n = a.stages.size();
  if (knobs.stages.size() != n) {
    Fail("what-if for pipeline '{}': {} stage knobs given for its {} stages", a.pipeline,
         knobs.stages.size(), n);
  }
  if (knobs.cache_after && *knobs.cache_after >= n) {
    Fail("what-if for pipeline '{}': cache_after {} is past its last stage ({})", a.pipeline,
         *knobs.cache_after, n - 1);
  }
  std::vector<StageKnobs> k = knobs.stages;
  for (size_t i = 0; i < n; ++i) {
    const std::string& name = a.stages[i].name;
    if (k[i].parallelism < 1 || k[i].parallelism > 4096) {
      Fail("what-if for pipeline '{}': stage '{}': parallelism {} is outside 1-4096", a.pipeline,
           name, k[i].parallelism);
    }
    if (k[i].buffer_size < 0) {
      Fail("what-if for pipeline '{}': stage '{}': buffer_size {} is negative", a.pipeline, name,
           k[i].buffer_size);
    }
    if (k[i].parallelism > 1 && !a.stages[i].parallelizable) {
      pred.notes.push_back(
          fmt::format("stage '{}' ({}) runs sequentially: parallelism {} taken as 1", name,
                      a.stages[i].op, k[i].parallelism));
      k[i].parallelism = 1;
    }
  }
  return k;
}

// Host CPU: X * sum(D_i) <= C.
void AddCpuLimit(const Analysis& a, const std::vector<double>& cpu, const Resources& resources,
                 const std::string& unit, Prediction& pred) {
  double stage_cpu = 0;
  for (double d : cpu) stage_cpu += d;
  const double total_cpu = stage_cpu + a.other_cpu_demand;
  if (resources.cores > 0 && total_cpu > 0) {
    Limit limit;
    limit.kind = LimitKind::kCpu;
    limit.outputs_per_s = resources.cores / total_cpu;
    limit.why = fmt::format(
        "the pipeline needs {} of CPU{} ({} in its stages, {} elsewhere in the process) and has "
        "{} core{}: at most {} {}",
        Duration(total_cpu), " per " + a.output_noun, Duration(stage_cpu),
        Duration(a.other_cpu_demand), Num(resources.cores), resources.cores == 1 ? "" : "s",
        Num(limit.outputs_per_s), unit);
    pred.limits.push_back(limit);
  }
}

// Disk: X * bytes per output <= B, unless a cache at or after the reading stage serves the data.
void AddDiskLimit(const Analysis& a, const Knobs& knobs, const Resources& resources,
                  const std::string& unit, Prediction& pred) {
  double disk_bytes = a.disk_bytes_per_output;
  if (knobs.cache_after && disk_bytes > 0) {
    size_t reader = 0;
    for (size_t i = 0; i < a.stages.size(); ++i) {
      if (a.stages[i].op == "read_file" || a.stages[i].op == "read_lines") {
        reader = i;
        break;
      }
    }
    if (*knobs.cache_after >= reader) {
      disk_bytes = 0;
      pred.notes.push_back(fmt::format(
          "the cache after stage '{}' serves the data once filled: no disk reads from then on",
          a.stages[*knobs.cache_after].name));
    }
  }
  if (resources.disk_mb_per_s > 0 && disk_bytes > 0) {
    Limit limit;
    limit.kind = LimitKind::kDisk;
    limit.outputs_per_s = resources.disk_mb_per_s * 1e6 / disk_bytes;
    limit.why = fmt::format("each {} reads {} from storage and {} reads {} MB/s: at most {} {}",
                            a.output_noun, Bytes(disk_bytes),
                            a.disk_device.empty() ? "the disk" : a.disk_device,
                            Num(resources.disk_mb_per_s), Num(limit.outputs_per_s), unit);
    pred.limits.push_back(limit);
  }
}

// Memory: the measured resident set plus what the knobs `k` add in queues and workers.
void AddMemoryLimit(const Analysis& a, const Knobs& knobs, const std::vector<StageKnobs>& k,
                    const Resources& resources, const std::string& unit, Prediction& pred) {
  const std::vector<StageKnobs> current = CurrentKnobs(a).stages;
  pred.memory_bytes =
      static_cast<double>(a.rss_bytes) + InFlightBytes(a, k) - InFlightBytes(a, current);
  if (knobs.cache_after) {
    pred.notes.push_back("the memory a cache needs is not counted in the projected memory");
  }
  const double budget = static_cast<double>(resources.memory_bytes);
  if (budget > 0 && a.rss_bytes > 0 && pred.memory_bytes >= 0.9 * budget) {
    Limit limit;
    limit.kind = LimitKind::kMemory;
    if (pred.memory_bytes > budget) {
      limit.outputs_per_s = 0;
      limit.why = fmt::format(
          "the job would need {} of memory ({} measured, adjusted for the buffers and workers "
          "these knobs hold) but has {}: it would swap or be killed",
          Bytes(pred.memory_bytes), Bytes(static_cast<double>(a.rss_bytes)), Bytes(budget));
    } else {
      limit.outputs_per_s = a.measured_outputs_per_s;
      limit.why = fmt::format(
          "the job's resident memory is {} of the {} there is ({}): more buffers or workers "
          "would swap, so no more than the measured {} {}",
          Bytes(pred.memory_bytes), Bytes(budget), Percent(pred.memory_bytes / budget),
          Num(a.measured_outputs_per_s), unit);
    }
    pred.limits.push_back(limit);
  }
}

}  // namespace

Prediction Predict(const Analysis& a, const Knobs& knobs, const Resources& resources) {
  Prediction pred;
  const std::vector<StageKnobs> k = CheckedKnobs(a, knobs, pred);
  std::vector<double> wall_demand, cpu_demand;
  for (size_t i = 0; i < a.stages.size(); ++i) {
    const StageAnalysis& s = a.stages[i];
    // Ordered parallel workers also spend the time they wait for their turn (as measured; none
    // when the stage runs unordered or on one worker).
    wall_demand.push_back(s.wall_demand + internal::TurnWait(s, k[i]));
    cpu_demand.push_back(s.cpu_demand);
  }
  const std::vector<double> wall = internal::EffectiveDemand(wall_demand, knobs);
  const std::vector<double> cpu = internal::EffectiveDemand(cpu_demand, knobs);
  const double step =
      std::max(0.0, resources.consumer_step_seconds.value_or(a.consumer_step_seconds));
  const std::string unit = internal::Plural(a.output_noun) + "/s";

  // Stages and the consumer: X_s = p_s / W_s for each server (the utilization law, U <= 1).
  for (const Server& s : internal::BuildServers(k, wall, step, internal::Fusible(a))) {
    if (!std::isfinite(s.capacity)) continue;
    pred.limits.push_back(ServerLimit(a, k, wall, cpu, s));
  }
  AddCpuLimit(a, cpu, resources, unit, pred);
  AddDiskLimit(a, knobs, resources, unit, pred);
  AddMemoryLimit(a, knobs, k, resources, unit, pred);

  std::stable_sort(pred.limits.begin(), pred.limits.end(), [](const Limit& x, const Limit& y) {
    return x.outputs_per_s < y.outputs_per_s;
  });
  pred.outputs_per_s = pred.limits.empty() ? 0 : pred.limits.front().outputs_per_s;
  return pred;
}

double PredictThroughput(const Analysis& analysis, const Knobs& knobs, double cores,
                         int64_t memory_bytes) {
  Resources r = CurrentResources(analysis);
  r.cores = cores;
  if (memory_bytes > 0) r.memory_bytes = memory_bytes;
  return Predict(analysis, knobs, r).outputs_per_s;
}

}  // namespace sluice::analyzer
