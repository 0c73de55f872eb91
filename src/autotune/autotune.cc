// The online tuner's thread: the window, the plan, the trial and the record (see autotune.h).
#include "sluice/autotune/autotune.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "autotune/internal/decide.h"
#include "autotune/internal/hill.h"
#include "common/thread_annotations.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/common/log.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/tuner/tuner.h"

namespace sluice::autotune {

namespace {

// After a change, samples this long are left out of the measured window (workers starting,
// queues filling).
constexpr double kSettleSeconds = 0.5;
// How long an Apply waits for decreases before making increases.
constexpr double kApplySettleSeconds = 1.0;
// The longest a cache's insertion and recording (two epochs) may hold the knobs.
constexpr double kMaxCacheHoldSeconds = 10;

// The pipeline to tune: by name, else the live one that delivered the most.
const trace::PipelineTrace* Target(const trace::Trace& t, const std::string& name) {
  const trace::PipelineTrace* best = nullptr;
  for (const trace::PipelineTrace& p : t.pipelines) {
    if (p.closed || p.finished) continue;
    if (!name.empty() && p.name != name) continue;
    if (best == nullptr || p.consumer.next_calls > best->consumer.next_calls) best = &p;
  }
  return best;
}

// The id of a live pipeline named `name` (the trace knows pipelines by name).
std::optional<uint64_t> LiveId(const std::string& name) {
  std::optional<uint64_t> id;
  pipeline::ForEachLivePipeline([&](const pipeline::Pipeline& p) {
    if (!id && p.name() == name) id = p.id();
  });
  return id;
}

// The outputs per epoch of the live pipeline named `name`, when its ops know it before the epoch
// runs (pipeline::Pipeline::EpochLength).
std::optional<double> LiveEpochOutputs(const std::string& name) {
  std::optional<double> n;
  pipeline::ForEachLivePipeline([&](const pipeline::Pipeline& p) {
    if (n || p.name() != name) return;
    if (const std::optional<int64_t> each = p.EpochLength(); each && *each > 0) {
      n = static_cast<double>(*each);
    }
  });
  return n;
}

}  // namespace

class AutotunerImpl {
 public:
  explicit AutotunerImpl(AutotuneOptions options) : opt_(std::move(options)), tracer_(opt_.tracer) {
    thread_ = std::thread([this] { Run(); });
  }
  ~AutotunerImpl() { Stop("completed"); }

  Summary Stop(const std::string& reason) {
    {
      MutexLock lock(mu_);
      if (stopped_) return summary_;
      stopped_ = true;
    }
    wake_.NotifyAll();
    if (thread_.joinable()) thread_.join();
    Publish();
    tracer_.Stop(reason);
    const trace::Trace t = tracer_.Current();
    summary_.retunes = retunes_;
    Converge(t, name_, summary_);
    summary_.tuned_path = WriteTuned(t);
    return summary_;
  }

 private:
  struct Trial {
    size_t retune = 0;  // index into retunes_
    std::vector<pipeline::KnobChange> undo;
    double before = 0;
    bool probe = false;      // outside the model: no prediction to calibrate with
    double before_se = 0;    // the relative standard error of `before` (internal::WindowNoise)
    bool must_gain = false;  // kept only if it gained beyond the noise (KeepProbe), else unless
                             // it lost beyond it (KeepTrial)
    double from = 0;         // where its first measured window began
    // Set when measured once more (internal::MeasureProbeAgain), over the window from `from`:
    // what the first window read, within the noise of `before`.
    struct Reading {
      double rate = 0;
      double noise = 0;
    };
    std::optional<Reading> first;
  };
  // A cache inserted at an epoch boundary: it records the epoch after `epoch` and replays from
  // the one after that, when its rate is measured.
  struct Cache {
    size_t retune = 0;  // index into retunes_; SIZE_MAX when Apply refused it
    int64_t epoch = 0;  // the epoch running when it was planned
    bool replaying = false;
    bool measured = false;
    bool hold = false;          // no planning until the replay is measured (CacheInTransition)
    bool workers_kept = false;  // KeepWorkersWhileRecording changed knobs
  };

  void Run() {
    pthread_setname_np(pthread_self(), "sluice-autotune");
    double wait = 0.25;  // until the next window is complete, in seconds
    for (;;) {
      {
        MutexLock lock(mu_);
        if (stopped_) break;
        wake_.WaitFor(mu_, std::chrono::duration<double>(std::max(wait, 0.05)));
        if (stopped_) break;
      }
      wait = 0.25;
      try {
        wait = Step();
      } catch (const std::exception& e) {
        if (!warned_) Warn("autotune: {}", e.what());
        warned_ = true;
      }
    }
    // The tuner's own cost, stated with its results.
    summary_.tuner_cpu_seconds = ThreadCpuNanos() * 1e-9;
    tuner::ReleaseThreadSolver();
  }

  // One look at the live trace: measure a trial, or plan when a window has passed. Returns the
  // seconds until the next window is complete.
  double Step() {
    // Observed only: the trace records the run, and Stop() measures it; no snapshot needed.
    if (opt_.policy == Policy::kObserve) return opt_.interval;
    const trace::Trace t = tracer_.Current();
    const trace::PipelineTrace* p = Target(t, opt_.pipeline);
    if (p == nullptr || t.series.t.empty()) return 0.25;
    if (name_.empty()) name_ = p->name;
    if (p->name != name_) return 0.25;
    const double now = t.series.t.back();
    if (window_start_ < 0) window_start_ = t.series.t[p->first_index];
    if (now - window_start_ < opt_.interval) return window_start_ + opt_.interval - now;
    Decide(t, *p, now);
    return opt_.interval;
  }

  void Decide(const trace::Trace& t, const trace::PipelineTrace& pt, double now) {
    const trace::PipelineTrace* p = &pt;
    // An inconclusive probe is measured over both its windows.
    const double from =
        trial_ && trial_->first ? trial_->from : std::max(window_start_, now - opt_.interval);
    analyzer::Analysis a = internal::AnalyzeWindow(t, from, name_, opt_.cores);
    const double rate = a.measured_outputs_per_s;
    const double se = internal::WindowNoise(t, *p, from);
    // A cache planned now within the first epoch: the rest of that epoch and the one the cache
    // records run every stage, and this window measured none of the cache's transition, so the
    // knobs for them are planned from it rather than held.
    bool first_epoch_cache = false;
    if (opt_.policy != Policy::kHillClimb) {
      if (CacheReplayStarts(*p, now, rate)) return;
      // Whether a trial runs or not: the cache waits for the epoch boundary.
      first_epoch_cache = TryCache(t, *p, a, now, rate) && p->epochs_completed == 0;
    }
    if (opt_.policy == Policy::kHillClimb) {
      Climb(*p, a, now, rate);
    } else if (trial_) {
      Measure(now, rate, se);
    } else if (!CacheInTransition() || first_epoch_cache) {
      const std::vector<pipeline::KnobChange> planned = Plan(t, *p, a, now, rate, se);
      // A cache planned before the epoch boundary it waits for, beside knobs planned in the
      // same window: the stage before it keeps the workers those knobs give.
      if (cache_ && cache_->retune != SIZE_MAX && !cache_->workers_kept && !planned.empty() &&
          p->epochs_completed == cache_->epoch) {
        KeepWorkersWhileRecording(a, retunes_[cache_->retune].changes.front().stage, planned);
      }
    }
  }

  // Watches a cache inserted earlier. When its replay begins, the window restarts (the pipeline's
  // work changed, and a trial spanning the switch measures nothing of its own); the first window
  // of replay measures the cache. Returns true when this window is spent on that.
  bool CacheReplayStarts(const trace::PipelineTrace& p, double now, double rate) {
    if (!cache_ || cache_->measured || cache_->retune == SIZE_MAX) return false;
    if (p.epochs_completed < cache_->epoch + 2) return false;
    if (!cache_->replaying) {
      cache_->replaying = true;
      trial_.reset();  // its record keeps measured -1: not measured
      window_start_ = now + kSettleSeconds;
      return true;
    }
    retunes_[cache_->retune].measured_outputs_per_s = rate;
    cache_->measured = true;
    Publish();
    return false;  // the same window plans the knobs for replay (the rate moved: a new phase)
  }

  // A cache planned for the next epoch boundary, until its replay is measured, when that comes
  // within kMaxCacheHoldSeconds. The knobs are held meanwhile: the rate is that of the epoch it
  // records, a transition this loop caused (not a phase change), and knobs planned from it would be
  // wrong for the replay, which CacheReplayStarts measures and plans for.
  bool CacheInTransition() const {
    return cache_ && cache_->hold && cache_->retune != SIZE_MAX && !cache_->measured;
  }

  // The tuner's options for the live pipeline, planning for `epochs` passes over the data.
  tuner::TuneOptions Options(const trace::Trace& t, const config::Document& doc, int64_t epochs,
                             std::optional<double> epoch_outputs = std::nullopt) const {
    tuner::TuneOptions topt = tuner::OptionsFromConfig(doc);
    topt.epoch_outputs = epoch_outputs;
    topt.cores = opt_.cores;
    topt.memory_bytes = opt_.memory_bytes;
    topt.sample_interval = t.tracer.interval > 0 ? t.tracer.interval : 0.1;
    topt.epochs = epochs;
    return topt;
  }

  // Inserts a cache at the next epoch boundary when the plan for the epochs left has one and
  // promises more than the minimum gain over the plan for one pass. Tried once per run, as soon
  // as an epoch's size is known: from the ops (a file list's length) in the first epoch, else
  // once an epoch has completed. Returns true when a cache was planned for the next boundary.
  bool TryCache(const trace::Trace& t, const trace::PipelineTrace& p, const analyzer::Analysis& a,
                double now, double rate) {
    if (cache_ || p.stages.empty()) return false;
    std::optional<double> epoch_outputs;
    double epochs_done = static_cast<double>(p.epochs_completed);
    if (p.epochs_completed < 1) {
      epoch_outputs = LiveEpochOutputs(name_);
      if (!epoch_outputs || p.stages.back().elements_out <= 0) return false;
      epochs_done = static_cast<double>(p.stages.back().elements_out) / *epoch_outputs;
    }
    const config::Document doc = config::Document::Parse(p.config_text, p.config_path);
    const int64_t replay = internal::EpochsToReplay(doc.epochs(), p.epochs_completed);
    if (replay == 0) return false;
    const tuner::Plan with =
        tuner::Tune(a, p, Options(t, doc, replay < 0 ? -1 : replay + 1, epoch_outputs));
    const tuner::Plan without = tuner::Tune(a, p, Options(t, doc, 1));
    const std::optional<tuner::Change> cache =
        internal::CacheToInsert(with, without, opt_.min_gain);
    if (!cache) return false;
    const std::optional<uint64_t> id = LiveId(name_);
    if (!id) return false;
    cache_ = Cache{SIZE_MAX, p.epochs_completed};  // tried once, whatever Apply says
    // Held for while it records only when that is soon over: with long epochs, the knobs for
    // the epoch it records matter more than planning the replay's from a clean window.
    const double epoch_seconds = (now - t.series.t[p.first_index]) / std::max(epochs_done, 1e-3);
    cache_->hold = 2 * epoch_seconds <= kMaxCacheHoldSeconds;
    const pipeline::KnobChange change{cache->stage, tuner::kKnobCache, 1};
    std::optional<std::vector<pipeline::AppliedChange>> applied;
    try {
      applied = pipeline::ApplyToLivePipeline(*id, {change}, kApplySettleSeconds);
    } catch (const std::exception& e) {
      applied = {{{cache->stage, tuner::kKnobCache, 0, 1,
                   pipeline::AppliedChange::When::kNotApplied, e.what()}}};
    }
    if (!applied || applied->empty()) return false;
    retunes_.push_back(
        internal::RecordCache(now, *cache, with, applied->front(), rate, calibration_));
    if (epoch_outputs) {
      retunes_.back().reason += fmt::format(
          "; planned within the first epoch, whose length ({} outputs) the pipeline's ops know",
          Num(*epoch_outputs));
    }
    if (applied->front().when == pipeline::AppliedChange::When::kNextEpoch) {
      cache_->retune = retunes_.size() - 1;
      KeepWorkersWhileRecording(a, cache->stage);
    }
    Publish();
    return cache_->retune != SIZE_MAX;
  }

  // With a cache going in after `stage`: the workers that stage and those above it ran on (or will
  // run on, after `planned`) are kept for the epoch the cache records
  // (internal::WorkersForRecording), applied now and recorded with the cache.
  void KeepWorkersWhileRecording(const analyzer::Analysis& a, const std::string& stage,
                                 const std::vector<pipeline::KnobChange>& planned = {}) {
    const internal::RecordingWorkers keep = internal::WorkersForRecording(a, stage, planned);
    const std::optional<uint64_t> id = LiveId(name_);
    if (keep.changes.empty() || !id) return;
    std::optional<std::vector<pipeline::AppliedChange>> applied;
    try {
      applied = pipeline::ApplyToLivePipeline(*id, keep.changes, kApplySettleSeconds);
    } catch (const std::exception& e) {
      if (!warned_) Warn("autotune: {}", e.what());
      warned_ = true;
      return;
    }
    if (!applied) return;
    cache_->workers_kept = true;
    trace::Retune& record = retunes_[cache_->retune];
    for (const pipeline::AppliedChange& c : *applied) {
      record.changes.push_back(
          {c.stage, c.knob, c.from, c.to, keep.why, internal::WhenText(c.when), c.note});
    }
    Publish();
  }

  // The baseline policy: one hill-climbing step per window (internal/hill.h).
  void Climb(const trace::PipelineTrace& p, const analyzer::Analysis& a, double now, double rate) {
    if (!hill_) hill_.emplace(p, opt_.cores.value_or(a.cores));
    if (!retunes_.empty() && retunes_.back().measured_outputs_per_s < 0) {
      retunes_.back().measured_outputs_per_s = rate;
    }
    internal::HillClimber::Step step = hill_->OnWindow(rate);
    window_start_ = now + kSettleSeconds;
    if (step.changes.empty()) return;
    const std::optional<uint64_t> id = LiveId(name_);
    if (!id) return;
    const auto applied = pipeline::ApplyToLivePipeline(*id, step.changes, kApplySettleSeconds);
    if (!applied) return;
    trace::Retune r;
    r.t = now;
    r.action = step.action;
    r.reason = step.reason;
    r.before_outputs_per_s = rate;
    for (const pipeline::AppliedChange& c : *applied) {
      r.changes.push_back({c.stage, c.knob, c.from, c.to, "", "now", c.note});
    }
    retunes_.push_back(std::move(r));
    Publish();
  }

  // The window after a change: keep it, or roll it back. `se`: the window's noise.
  void Measure(double now, double rate, double se) {
    trace::Retune& r = retunes_[trial_->retune];
    r.measured_outputs_per_s = rate;
    if (!trial_->probe) {
      summary_.model_error.push_back(std::abs(r.predicted_outputs_per_s - rate) / rate);
      summary_.calibrated_error.push_back(std::abs(r.calibrated_outputs_per_s - rate) / rate);
      calibration_ = internal::Calibrate(calibration_, r.predicted_outputs_per_s, rate);
    }
    const double noise = internal::NoiseBetween(trial_->before_se, se, opt_.noise);
    if (trial_->must_gain && !trial_->first &&
        internal::MeasureProbeAgain(trial_->before, rate, noise)) {
      trial_->first = Trial::Reading{rate, noise};
      window_start_ = now;  // the next look is one interval on; it measures from trial_->from
      return;
    }
    if (const std::optional<Trial::Reading>& first = trial_->first) {
      r.reason += fmt::format(
          "; its first window measured {} outputs/s, {}% above the {} before it, within the {}% "
          "noise: inconclusive, so it was measured again over {} s from {} s",
          Num(first->rate), Num(100 * (first->rate / trial_->before - 1)), Num(trial_->before),
          Num(100 * first->noise), Num(now - trial_->from), Num(trial_->from));
    }
    const bool keep = trial_->must_gain ? internal::KeepProbe(trial_->before, rate, noise)
                                        : internal::KeepTrial(trial_->before, rate, noise);
    last_rate_ = keep ? rate : trial_->before;
    last_se_ = keep ? se : trial_->before_se;
    if (!keep) {
      r.kept = false;
      const std::optional<uint64_t> id = LiveId(name_);
      std::vector<pipeline::AppliedChange> undone;
      if (id)
        undone = pipeline::ApplyToLivePipeline(*id, trial_->undo, kApplySettleSeconds)
                     .value_or(std::vector<pipeline::AppliedChange>());
      trace::Retune back;
      back.t = now;
      back.action = "rollback";
      back.reason =
          trial_->must_gain
              ? fmt::format(
                    "measured {} outputs/s after the trial, not above the {} before it by more "
                    "than the {}% noise: the trial is undone",
                    Num(rate), Num(trial_->before), Num(100 * noise))
              : fmt::format(
                    "measured {} outputs/s after the change, below the {} before it (more than "
                    "the {}% noise): the change is undone",
                    Num(rate), Num(trial_->before), Num(100 * noise));
      back.before_outputs_per_s = rate;
      for (const pipeline::AppliedChange& c : undone) {
        back.changes.push_back({c.stage, c.knob, c.from, c.to,
                                "undoes the change at " + Num(r.t) + " s", "now", c.note});
      }
      retunes_.push_back(std::move(back));
    }
    trial_.reset();
    window_start_ = now + kSettleSeconds;
    Publish();
  }

  // A steady window: plan, and apply a plan that promises more than the minimum gain. Returns
  // the changes applied (none when it only probed or left the pipeline alone).
  std::vector<pipeline::KnobChange> Plan(const trace::Trace& t, const trace::PipelineTrace& p,
                                         const analyzer::Analysis& a, double now, double rate,
                                         double se) {
    std::string reason;
    const double noise = internal::NoiseBetween(last_se_, se, opt_.noise);
    const bool phase_change = last_rate_ > 0 && std::abs(rate - last_rate_) > noise * last_rate_;
    if (phase_change) {
      reason = fmt::format(
          "the rate moved from {} to {} outputs/s, beyond the {}% noise (a phase change); ",
          Num(last_rate_), Num(rate), Num(100 * noise));
    }
    if (last_rate_ <= 0) {
      last_rate_ = rate;
      last_se_ = se;
    }
    reason += a.limits.empty() ? "no bound found" : a.Bottleneck().why;
    const config::Document doc = config::Document::Parse(p.config_text, p.config_path);
    // Knobs planned for a cache would be wrong until it replays: plan them as if the data were
    // read once (TryCache plans the cache, which goes in at the next epoch boundary).
    tuner::Plan plan = tuner::Tune(a, p, Options(t, doc, 1));
    const std::vector<pipeline::KnobChange> changes = internal::LiveChanges(plan);
    if (changes.empty() || plan.speedup <= 1 + opt_.min_gain) {
      const double before = last_rate_;
      const internal::PhaseMove move =
          phase_change ? internal::AfterPhaseChange(before, rate) : internal::PhaseMove{};
      if (phase_change) {
        last_rate_ = rate;  // the new phase needs no change the model sees
        last_se_ = se;
        if (move.reprobe) {
          probed_.clear();
          queues_probed_ = false;
        }
        retunes_.push_back(
            internal::RecordReplan(now, reason, plan, rate, calibration_, opt_.min_gain));
        Publish();
      }
      if (!(move.queues && TryQueues(plan, before, now, rate, se)))
        TryProbe(a, plan, now, rate, se);
      return {};
    }
    const std::optional<uint64_t> id = LiveId(name_);
    if (!id) return {};
    const auto applied = pipeline::ApplyToLivePipeline(*id, changes, kApplySettleSeconds);
    if (!applied) return {};
    retunes_.push_back(internal::RecordApply(now, reason, plan, *applied, rate, calibration_));
    trial_ = Trial{retunes_.size() - 1, internal::Undo(*applied), rate, false, se};
    window_start_ = now + kSettleSeconds;
    Publish();
    return changes;
  }

  // A trial outside the model: a worker (internal::ProbeChange), else the plan's queues
  // (internal::QueueProbe), measured and kept or undone as any.
  void TryProbe(const analyzer::Analysis& a, const tuner::Plan& plan, double now, double rate,
                double se) {
    const double gap = std::max({internal::kProbeGap, 3 * opt_.noise, 3 * se});
    if (const std::optional<internal::Probe> probe =
            internal::ProbeChange(a, probed_, gap, calibration_)) {
      probed_.insert(probe->change.stage);  // once per stage and phase
      StartProbe({probe->change}, probe->reason, /*must_gain=*/true, now, rate, se);
      return;
    }
    if (queues_probed_) return;
    const std::optional<internal::QueueTrial> grow =
        internal::QueueProbe(a, plan, gap, calibration_);
    if (!grow) return;
    queues_probed_ = true;  // once per phase
    StartProbe(grow->changes, grow->reason, /*must_gain=*/true, now, rate, se);
  }

  // The queues a plan grows without a predicted gain, as a trial (internal::QueueGrowth).
  // Returns true when the trial started.
  bool TryQueues(const tuner::Plan& plan, double before, double now, double rate, double se) {
    const std::optional<internal::QueueTrial> grow =
        internal::QueueGrowth(plan, before, rate, opt_.min_gain);
    if (!grow) return false;
    return StartProbe(grow->changes, grow->reason, /*must_gain=*/false, now, rate, se);
  }

  // Applies `changes` as a trial outside the model, measured by the next window; `must_gain`:
  // kept only if the rate rose beyond the noise. Returns true when a change was applied.
  bool StartProbe(const std::vector<pipeline::KnobChange>& changes, const std::string& reason,
                  bool must_gain, double now, double rate, double se) {
    const std::optional<uint64_t> id = LiveId(name_);
    if (!id) return false;
    const auto applied = pipeline::ApplyToLivePipeline(*id, changes, kApplySettleSeconds);
    if (!applied || applied->empty()) return false;
    trace::Retune r;
    r.t = now;
    r.action = "probe";
    r.reason = reason;
    r.before_outputs_per_s = rate;
    for (const pipeline::AppliedChange& c : *applied) {
      r.changes.push_back({c.stage, c.knob, c.from, c.to, "a trial outside the model",
                           internal::WhenText(c.when), c.note});
    }
    retunes_.push_back(std::move(r));
    trial_ =
        Trial{retunes_.size() - 1, internal::Undo(*applied), rate, /*probe=*/true, se, must_gain};
    window_start_ = now + kSettleSeconds;
    trial_->from = window_start_;
    Publish();
    return true;
  }

  void Publish() {
    if (const std::optional<uint64_t> id = LiveId(name_)) published_id_ = *id;
    if (published_id_ != 0) tracer_.SetRetunes(published_id_, retunes_);
  }

  // The config as it last ran, beside the trace or at the path asked for. Returns the path,
  // empty when it could not be written.
  std::string WriteTuned(const trace::Trace& t) {
    std::filesystem::path out = opt_.tuned_path;
    if (out.empty()) out = opt_.tracer.trace_path.parent_path() / "tuned.json";
    try {
      return WriteLastConfig(t, name_, out) ? out.string() : "";
    } catch (const std::exception& e) {
      Warn("autotune: the last config was not written to {}: {}", out.string(), e.what());
      return "";
    }
  }

  AutotuneOptions opt_;
  tracer::Tracer tracer_;
  Mutex mu_;
  CondVar wake_;
  bool stopped_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // The tuning thread's own, read by Stop() after it is joined.
  std::string name_;
  double window_start_ = -1;  // trace seconds; the next window starts here
  double last_rate_ = 0;      // the rate of the settled knobs
  double last_se_ = 0;        // its relative standard error (internal::WindowNoise)
  double calibration_ = 1;    // measured / predicted, learned from trials
  std::optional<Trial> trial_;
  std::set<std::string> probed_;  // stages tried outside the model in this phase
  bool queues_probed_ = false;    // the plan's queues tried outside the model in this phase
  std::optional<Cache> cache_;
  std::optional<internal::HillClimber> hill_;
  std::vector<trace::Retune> retunes_;
  uint64_t published_id_ = 0;
  bool warned_ = false;
  Summary summary_;
};

Autotuner::Autotuner(AutotuneOptions options)
    : impl_(std::make_unique<AutotunerImpl>(std::move(options))) {}
Autotuner::~Autotuner() = default;
Summary Autotuner::Stop(const std::string& reason) { return impl_->Stop(reason); }

}  // namespace sluice::autotune
