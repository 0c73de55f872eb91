// The polish: from the program's solution, knob changes the analyzer's prediction judges better
// (a worker less or more, maps folded into one group of workers), and the threads and memory a
// set of knobs takes.
#include "tuner/polish.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace sluice::tuner::internal {
namespace {

using analyzer::Analysis;
using analyzer::Knobs;

// Knob changes found after the solve (the polish) must improve the prediction by this share.
constexpr double kPolishGain = 0.02;

bool Async(const analyzer::StageKnobs& k) { return k.parallelism > 1 || k.buffer_size > 0; }

// The program is linear, so it takes an ordered stage's turn wait as measured at the traced
// workers and ignores queueing for an input lock; the analyzer's prediction models both. The
// polish walks from the solution one worker at a time, judged by the prediction: a worker less
// where the prediction does not drop (the program's headroom can ask for a worker the CPU
// cannot feed, and a CPU-bound thread beyond what the cores run only adds preemption), else a
// worker more where it gains kPolishGain, within the memory budget and the workers' cap. Whether
// a stage is async stays as the program chose. A stage whose config allows reordering runs
// unordered whenever it has several workers.
class Polisher {
 public:
  Polisher(const Model& m, const Analysis& a, const analyzer::Resources& res)
      : m_(m), a_(a), res_(res) {}

  double Predict(const Knobs& k) const { return analyzer::Predict(a_, k, res_).outputs_per_s; }

  bool OrderedFor(size_t i, int workers) const {
    return a_.stages[i].ordered && !(m_.stages[i].reorder && workers > 1);
  }

  // The most ordered workers stage i keeps under `in`: its share of the cores counts the CPU of
  // the maps fused onto its workers too. A worker is on a core for cpu / wall of its time, so a
  // group that also waits (a fused sleep or read) needs wall / cpu workers per core of its share:
  // capped at the CPU alone, 'pack' of the suite's skewed pipeline with a 1 ms 'lookup' fused
  // onto it got 2 workers for 29.8 batches/s where 7 gave 61.
  int Most(size_t i, const Knobs& in) const {
    const StageModel& sm = m_.stages[i];
    if (sm.share_cap <= 0) return sm.cap;
    double cpu = sm.cpu;
    double wall = sm.wall;
    for (size_t j = i; j-- > 1;) {
      const analyzer::StageKnobs& k = in.stages[j];
      if (k.parallelism > 1 || k.buffer_size > 0 || !m_.stages[j].fusible) break;
      cpu += m_.stages[j].cpu;
      wall += m_.stages[j].wall;
    }
    const double share = std::ceil(m_.cores * std::max(cpu, wall) / sm.share_cpu_total - 1e-9);
    return std::min(sm.cap, std::max(1, static_cast<int>(share)));
  }

  // Orders each stage as its workers allow and caps ordered workers at their share of the cores.
  void CapOrdered(Knobs& knobs) const {
    for (size_t i = 0; i < knobs.stages.size(); ++i) {
      analyzer::StageKnobs& k = knobs.stages[i];
      k.ordered = OrderedFor(i, k.parallelism);
      if (k.ordered && k.parallelism > Most(i, knobs)) {
        k.parallelism = std::max(1, Most(i, knobs));
        if (k.parallelism == 1) k.buffer_size = std::max(k.buffer_size, 1);  // stays async
      }
    }
  }

  // Map fusion as a knob change: async stage `i`, a parallelizable map, turns inline and its
  // workers join those of the parallel map stage below it (past inline fusible maps only), so the
  // maps run as one group of workers with no hand-off between them. None where that shape is
  // absent.
  std::optional<Knobs> FoldIntoGroup(const Knobs& knobs, size_t i) const {
    const auto async = [&](size_t j) { return Async(knobs.stages[j]); };
    if (!m_.stages[i].fusible || !async(i) || (knobs.cache_after && *knobs.cache_after >= i)) {
      return std::nullopt;
    }
    size_t o = i + 1;
    while (o < knobs.stages.size() && !async(o) && m_.stages[o].fusible) ++o;
    if (o >= knobs.stages.size() || !async(o) || !m_.stages[o].parallelizable) return std::nullopt;
    Knobs t = knobs;
    t.stages[i] = analyzer::StageKnobs{1, 0, knobs.stages[i].ordered};
    const int workers = knobs.stages[o].parallelism + knobs.stages[i].parallelism;
    t.stages[o].parallelism =
        std::min(workers, std::max(1, std::min(m_.stages[o].cap, Most(o, t))));
    if (t.stages[o].parallelism < 2) return std::nullopt;
    return t;
  }

  // One fused group of workers rather than a chain of threads, where it needs fewer threads for
  // no less throughput than `best`, or gains.
  std::optional<Knobs> FewerByFolding(const Knobs& knobs, double best) const {
    for (size_t i = 0; i < knobs.stages.size(); ++i) {
      std::optional<Knobs> t = FoldIntoGroup(knobs, i);
      if (!t || Memory(m_, *t) > m_.memory_budget) continue;
      const double x = Predict(*t);
      if ((Threads(*t) < Threads(knobs) && x >= best * (1 - 1e-3)) ||
          x > best * (1 + kPolishGain)) {
        return t;
      }
    }
    return std::nullopt;
  }

  // Moves each parallel group's async point down past the inline parallelizable maps directly
  // below it, where the prediction holds: the group then runs those maps too, on the core where
  // its element was made, instead of handing the element to the next thread to run them there
  // (on 2 cores, normalize run by the consumer after a group ending at flip took 0.33-0.39 ms of
  // CPU per image, and 0.08-0.09 ms inside the group; docs/benchmarks.md).
  void ExtendGroups(Knobs& knobs) const {
    for (size_t o = 1; o + 1 < knobs.stages.size(); ++o) {
      if (knobs.stages[o].parallelism < 2 || !m_.stages[o].parallelizable) continue;
      const size_t next = o + 1;
      if (Async(knobs.stages[next]) || !m_.stages[next].fusible ||
          (knobs.cache_after && *knobs.cache_after == o)) {
        continue;
      }
      Knobs t = knobs;
      t.stages[next] = knobs.stages[o];
      t.stages[next].ordered = OrderedFor(next, t.stages[next].parallelism);
      t.stages[o] = analyzer::StageKnobs{1, 0, a_.stages[o].ordered};
      if (Memory(m_, t) > m_.memory_budget || Predict(t) < Predict(knobs) * (1 - 1e-3)) continue;
      knobs = t;  // and the loop goes on from `next`, which may move further down
    }
  }

  // A worker less on a stage where the prediction holds (into `fewer`, unless set), and the
  // worker more that gains most, by at least kPolishGain (into `more`).
  void TryWorkers(const Knobs& knobs, double best, std::optional<Knobs>& fewer,
                  std::optional<Knobs>& more) const {
    double more_x = best * (1 + kPolishGain);
    for (size_t i = 0; i < knobs.stages.size(); ++i) {
      const analyzer::StageKnobs& k = knobs.stages[i];
      if (!m_.stages[i].parallelizable || !Async(k)) continue;
      for (int delta : {-1, +1}) {
        const int workers = k.parallelism + delta;
        if (workers < 1 || workers > m_.stages[i].cap) continue;
        if (delta > 0 && OrderedFor(i, workers) && workers > Most(i, knobs)) continue;
        if (workers == 1 && k.buffer_size == 0) continue;  // would turn the stage inline
        // The program planned waiting workers half busy for load the prediction cannot see.
        if (delta < 0 && Waiting(m_.stages[i].owner_wall, m_.stages[i].cpu)) continue;
        Knobs t = knobs;
        t.stages[i].parallelism = workers;
        t.stages[i].ordered = OrderedFor(i, workers);
        if (Memory(m_, t) > m_.memory_budget) continue;
        const double x = Predict(t);
        if (delta < 0 && !fewer && x >= best * (1 - 1e-3)) fewer = t;
        if (delta > 0 && x > more_x) {
          more = t;
          more_x = x;
        }
      }
    }
  }

 private:
  const Model& m_;
  const Analysis& a_;
  const analyzer::Resources& res_;
};

}  // namespace

Group GroupOf(const Model& m, const Knobs& knobs, size_t owner) {
  Group g;
  const auto runs = [&](size_t j) { return !knobs.cache_after || j > *knobs.cache_after; };
  if (runs(owner)) g.wall = m.stages[owner].owner_wall;
  bool fusing = knobs.stages[owner].parallelism > 1 && m.stages[owner].parallelizable;
  for (size_t j = owner; j-- > 0;) {
    const analyzer::StageKnobs& k = knobs.stages[j];
    if (k.parallelism > 1 || k.buffer_size > 0) break;
    fusing = fusing && m.stages[j].fusible;
    (fusing ? g.fused : g.locked).push_back(j);
    if (runs(j)) g.wall += m.stages[j].wall;
  }
  std::reverse(g.fused.begin(), g.fused.end());
  std::reverse(g.locked.begin(), g.locked.end());
  return g;
}

int Threads(const Knobs& knobs) {
  int threads = 0;
  for (const analyzer::StageKnobs& k : knobs.stages) {
    if (k.parallelism > 1 || k.buffer_size > 0) threads += k.parallelism;
  }
  return threads;
}

double Memory(const Model& m, const Knobs& knobs) {
  double bytes = m.reserved;
  for (size_t i = 0; i < knobs.stages.size(); ++i) {
    const analyzer::StageKnobs& k = knobs.stages[i];
    if (k.parallelism > 1 || k.buffer_size > 0) {
      bytes +=
          std::max(k.buffer_size, 1) * m.stages[i].bytes + k.parallelism * m.stages[i].worker_bytes;
    }
  }
  if (knobs.cache_after) bytes += m.stages[*knobs.cache_after].cache_bytes;
  return bytes;
}

Knobs Polish(const Model& m, const Analysis& a, const analyzer::Resources& res, Knobs knobs) {
  const Polisher polisher(m, a, res);
  polisher.CapOrdered(knobs);
  double best = polisher.Predict(knobs);
  for (int round = 0; round < 16; ++round) {
    std::optional<Knobs> fewer = polisher.FewerByFolding(knobs, best), more;
    polisher.TryWorkers(knobs, best, fewer, more);
    if (fewer) {
      knobs = *fewer;
    } else if (more) {
      knobs = *more;
    } else {
      break;
    }
    best = polisher.Predict(knobs);
  }
  polisher.ExtendGroups(knobs);
  return knobs;
}

}  // namespace sluice::tuner::internal
