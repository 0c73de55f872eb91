// Pipeline::Apply: knobs changed while the consumer iterates (see pipeline.h), and the changes
// that wait for the next epoch boundary.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "pipeline/internal/pipeline_impl.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {

using internal::LiveIter;
using internal::Stage;

namespace {

constexpr int64_t kMaxBufferSize = 1 << 20;

int64_t KnobValue(const Stage& s, const std::string& knob) {
  if (knob == config::kKnobCache) return 0;
  if (knob == config::kKnobParallelism) return s.parallelism.load();
  if (knob == config::kKnobBufferSize) return s.buffer_size.load();
  return s.deterministic.load() ? 1 : 0;
}

// Why a cache cannot follow stage `at` (its index); empty if it can.
std::string CacheRefusal(const PipelineImpl& p, size_t at) SLUICE_REQUIRES_SHARED(p.stages_mu) {
  if (at + 1 < p.stages.size() && p.stages[at + 1]->op_name == config::kKnobCache) {
    return fmt::format("it is already followed by a cache (stage '{}')", p.stages[at + 1]->name);
  }
  for (size_t i = 0; i <= at; ++i) {
    if (!p.stages[i]->props.deterministic) {
      return fmt::format(
          "stage '{}' (op '{}') is not deterministic: a cache after it would replay one epoch's "
          "random outputs in every later epoch",
          p.stages[i]->name, p.stages[i]->op_name);
    }
  }
  if (p.epochs >= 0) {
    // Inserted at the next boundary, the cache records that epoch and replays from the one after.
    const int64_t after_this = p.first_epoch + p.epochs - 1 - p.epoch.load();
    if (after_this < 2) {
      return fmt::format(
          "the job has {} epoch(s) after this one: a cache inserted at the next epoch boundary "
          "records that epoch and would replay none",
          std::max<int64_t>(0, after_this));
    }
  }
  return "";
}

// The stage `c` names, once its value is one the stage accepts; throws otherwise.
Stage& Validate(PipelineImpl& p, const KnobChange& c) {
  Stage* found = nullptr;
  size_t at = 0;
  ReaderLock stages_lock(p.stages_mu);
  for (size_t i = 0; i < p.stages.size(); ++i) {
    if (p.stages[i]->name == c.stage) {
      found = p.stages[i].get();
      at = i;
    }
  }
  const auto fail = [&](const std::string& why) {
    Fail("pipeline '{}': stage '{}': key '{}': {}", p.name, c.stage, c.knob, why);
  };
  if (found == nullptr) fail("no such stage in the running pipeline");
  const Stage& s = *found;
  const bool parallel = s.props.parallelizable && s.props.kind == OpKind::kMap;
  if (c.knob == config::kKnobParallelism) {
    if (c.to > 1 && !parallel) {
      fail(fmt::format("op '{}' runs sequentially; only 1 is allowed", s.op_name));
    }
    const auto most = static_cast<int64_t>(s.workers.size());
    if (c.to < 1 || c.to > most) {
      fail(fmt::format("{} is outside 1..{} (the workers this stage can have)", c.to, most));
    }
  } else if (c.knob == config::kKnobBufferSize) {
    if (c.to < 0 || c.to > kMaxBufferSize) {
      fail(fmt::format("{} is outside 0..{}", c.to, kMaxBufferSize));
    }
  } else if (c.knob == config::kKnobDeterministic) {
    if (c.to != 0 && c.to != 1) fail(fmt::format("{} is not 1 (ordered) or 0", c.to));
    if (c.to == 0 && !s.allow_reorder) {
      fail("0 reorders outputs, which the config does not allow (\"allow_reorder\": true)");
    }
    if (!parallel)
      fail(fmt::format("op '{}' runs sequentially; it has no order to keep", s.op_name));
  } else if (c.knob == config::kKnobCache) {
    if (c.to != 1) {
      fail(
          fmt::format("{}: only 1 (insert a cache after the stage) is allowed; a cache cannot "
                      "leave a running pipeline",
                      c.to));
    }
    const std::string refusal = CacheRefusal(p, at);
    if (!refusal.empty()) fail("no cache can go after it: " + refusal);
  } else {
    fail(
        "not a knob that can change while the pipeline runs (parallelism, buffer_size, "
        "deterministic, cache)");
  }
  return *found;
}

// Why `c` must wait for the next epoch boundary (a cache goes in only there); empty if not.
std::string DeferReason(const Stage& s, const KnobChange& c) {
  if (c.knob != config::kKnobCache) return "";
  return fmt::format(
      "a cache goes in after stage '{}' at the next epoch boundary: it records that epoch and "
      "replays it in every later one, when the stages up to '{}' no longer run",
      s.name, s.name);
}

}  // namespace

void PipelineImpl::SetKnob(Stage& s, const std::string& knob, int64_t to) {
  MutexLock lock(s.knob_mu);
  if (knob == config::kKnobParallelism) s.parallelism.store(static_cast<int>(to));
  if (knob == config::kKnobBufferSize) s.buffer_size.store(static_cast<int>(to));
  if (knob == config::kKnobDeterministic) s.deterministic.store(to != 0);
  s.async.store(s.parallelism.load() > 1 || s.buffer_size.load() > 0);
  s.knob_generation.fetch_add(1);
  fusion_generation.fetch_add(1);
}

std::vector<Stage*> PipelineImpl::WantedFusion(const Stage& owner) const {
  ReaderLock lock(stages_mu);
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].get() == &owner) return internal::MapsToFuse(stages, i);
  }
  return {};
}

void PipelineImpl::PublishFusion(Stage& owner, const std::vector<Stage*>& fused) {
  WriterLock lock(stages_mu);
  for (Stage* f : owner.fused) {
    if (f->fused_into == &owner) f->fused_into = nullptr;
  }
  for (Stage* f : fused) {
    if (Stage* other = f->fused_into; other != nullptr && other != &owner) {
      std::erase(other->fused, f);
    }
    f->fused_into = &owner;
  }
  owner.fused = fused;
}

LiveIter* PipelineImpl::FindLive(const Stage& s) {
  for (auto& it : chain_) {
    if (&it->stage() == &s) return it.get();
  }
  return nullptr;
}

void PipelineImpl::ApplyDeferred() {
  MutexLock lock(deferred_mu_);
  std::vector<std::unique_ptr<Stage>>& stages = consumer_stages();
  for (const KnobChange& c : deferred_) {
    if (c.knob == config::kKnobCache) {
      InsertCache(c.stage);
      continue;
    }
    for (auto& s : stages) {
      if (s->name == c.stage) SetKnob(*s, c.knob, c.to);
    }
  }
  deferred_.clear();
  WriterLock stages_lock(stages_mu);  // snapshots read the fusion
  internal::FuseMaps(stages);         // what the new chain's iterators then build
  for (auto& s : stages) {
    for (Stage* f : s->fused) f->UseSlots(s->parallelism.load());
  }
}

void PipelineImpl::InsertCache(const std::string& after) {
  const std::vector<std::unique_ptr<Stage>>& current = consumer_stages();
  size_t at = 0;
  std::vector<std::string> taken;
  for (size_t i = 0; i < current.size(); ++i) {
    if (current[i]->name == after) at = i + 1;
    taken.push_back(current[i]->name);
  }
  auto s = std::make_unique<Stage>();
  s->name = config::UniqueStageName(config::kKnobCache, taken);
  s->op_name = std::string(config::kKnobCache);
  const OpArgs::Json no_args = OpArgs::Json::object();
  OpArgs args(no_args, config_path, s->name, s->op_name,
              std::filesystem::path(config_path).parent_path());
  s->op = OpRegistry::Global().Create(s->op_name, args);
  args.Finish();
  s->props = s->op->properties();
  s->props.parallelizable = false;  // a stream op: one thread
  s->workers.push_back(std::make_unique<internal::WorkerCounters>());
  s->slots_used.store(1);
  WriterLock lock(stages_mu);
  stages.insert(stages.begin() + static_cast<std::ptrdiff_t>(at), std::move(s));
  for (size_t i = 0; i < stages.size(); ++i) stages[i]->index = i;
}

bool PipelineImpl::WaitSettled(const std::vector<Stage*>& changed, int64_t deadline_ns) {
  for (;;) {
    bool settled = true;
    {
      MutexLock lock(chain_mu_);
      for (const Stage* s : changed) {
        const LiveIter* it = FindLive(*s);
        if (it != nullptr && !it->Settled()) settled = false;
      }
    }
    if (settled || stopping()) return true;
    if (MonotonicNanos() >= deadline_ns) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::vector<AppliedChange> PipelineImpl::Apply(const std::vector<KnobChange>& changes,
                                               double settle_seconds) {
  MutexLock apply(apply_mu_);
  std::vector<Stage*> targets;
  for (const KnobChange& c : changes) targets.push_back(&Validate(*this, c));
  // Waiting for the decreases matters only before an increase (and a stage turning inline
  // waits for its puller, which may be the caller's own thread).
  // Classified once, before anything changes.
  std::vector<bool> decrease(changes.size());
  bool increases = false;
  for (size_t i = 0; i < changes.size(); ++i) {
    const KnobChange& c = changes[i];
    const int64_t from = KnobValue(*targets[i], c.knob);
    decrease[i] = c.to < from || c.knob == config::kKnobDeterministic;
    if (!decrease[i] && c.to > from) increases = true;
  }
  std::vector<AppliedChange> out(changes.size());
  std::vector<Stage*> decreased;
  bool settled = true;
  std::string unsettled_note;
  // Pass 0 makes the decreases (and order changes), pass 1 the increases.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < changes.size(); ++i) {
      const KnobChange& c = changes[i];
      Stage& s = *targets[i];
      if (decrease[i] != (pass == 0)) continue;
      const int64_t from = KnobValue(s, c.knob);
      AppliedChange& r = out[i];
      r = {c.stage, c.knob, from, c.to, AppliedChange::When::kNow, ""};
      if (!settled) {
        r.when = AppliedChange::When::kNotApplied;
        r.note = unsettled_note;
        continue;
      }
      {
        MutexLock lock(deferred_mu_);
        r.note = DeferReason(s, c);
        const bool pending = c.knob == config::kKnobCache &&
                             std::any_of(deferred_.begin(), deferred_.end(), [&](const auto& d) {
                               return d.knob == c.knob && d.stage == c.stage;
                             });
        if (pending) {
          r.when = AppliedChange::When::kNotApplied;
          r.note = "a cache after this stage already waits for the next epoch boundary";
          continue;
        }
        if (!r.note.empty()) {
          r.when = AppliedChange::When::kNextEpoch;
          deferred_.push_back(c);
          continue;
        }
        SetKnob(s, c.knob, c.to);
      }
      MutexLock lock(chain_mu_);
      if (LiveIter* it = FindLive(s)) it->Reconfigure();
      if (pass == 0) decreased.push_back(&s);
    }
    if (pass == 0 && !decreased.empty() && increases) {
      const int64_t deadline =
          MonotonicNanos() + static_cast<int64_t>(std::max(0.0, settle_seconds) * 1e9);
      settled = WaitSettled(decreased, deadline);
      if (!settled) {
        unsettled_note = fmt::format(
            "not applied: the decreases before it had not taken effect after {:.1f} s (workers "
            "still in their op, or queues not yet drained by the consumer)",
            settle_seconds);
      }
    }
  }
  return out;
}

std::vector<AppliedChange> Pipeline::Apply(const std::vector<KnobChange>& changes,
                                           double settle_seconds) {
  return impl_->Apply(changes, settle_seconds);
}

}  // namespace sluice::pipeline
