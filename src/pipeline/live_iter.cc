// A stage's place in the chain, and how it changes from inline to asynchronous and back while
// the consumer iterates (see live_iter.h).
#include "pipeline/internal/live_iter.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "pipeline/internal/inline_iters.h"
#include "pipeline/internal/pipeline_impl.h"

namespace sluice::pipeline::internal {

LiveIter::~LiveIter() = default;

std::unique_ptr<Iter> LiveIter::Build() {
  async_ = nullptr;
  map_ = nullptr;
  const Stage::Knobs knobs = s_.ReadKnobs();
  seen_generation_.store(knobs.generation, std::memory_order_release);
  fused_ = TakeFusion(knobs);
  if (knobs.wants_async()) {
    Iter* upstream = fused_.empty() ? upstream_ : above_[fused_.size()];
    auto it = MakeAsyncIter(p_, s_, upstream, epoch_, knobs, fused_);
    async_ = it.get();
    return it;
  }
  s_.UseSlots(1);
  switch (s_.props.kind) {
    case OpKind::kSource:
      return std::make_unique<SourceIter>(s_, epoch_, 0);
    case OpKind::kMap: {
      auto it = std::make_unique<MapIter>(s_, upstream_, epoch_);
      map_ = it.get();
      return it;
    }
    case OpKind::kStream:
      break;
  }
  return std::make_unique<StreamIter>(s_, upstream_, epoch_, 0);
}

void LiveIter::Start() {
  MutexLock lock(mu_);
  delegate_ = Build();
  delegate_->Start();
}

void LiveIter::Drain() {
  {
    MutexLock lock(mu_);
    if (cancelled_) return;
    rebuild_.store(false, std::memory_order_relaxed);
    draining_ = true;
  }
  if (AsyncStageIter* async = puller_async(); async != nullptr) {
    async->RetireAll();
    Element e;
    while (async->Next(&e)) carry_.push_back(std::move(e));
    input_ended_ = async->InputEnded();
  }
  std::unique_ptr<Iter> old;
  {
    MutexLock lock(mu_);
    old = std::move(delegate_);
    async_ = nullptr;
    map_ = nullptr;
  }
  // Every worker has left, or is leaving after its last delivery; one stuck in its op (seen
  // only on stop) keeps the old iterator alive.
  if (!old->Join(MonotonicNanos() + p_.stop_timeout_ns)) p_.KeepForever(std::move(old));
  build_after_carry_ = true;
}

std::vector<Stage*> LiveIter::TakeFusion(const Stage::Knobs& knobs) {
  fusion_seen_ = p_.fusion_generation.load(std::memory_order_acquire);
  std::vector<Stage*> wanted;  // nearest first
  if (knobs.wants_async() && knobs.parallelism > 1) wanted = p_.WantedFusion(s_);
  // The iterator above the last fused map stays, as the upstream.
  size_t n = 0;
  while (n < wanted.size() && n + 1 < above_.size() && &above_[n]->stage() == wanted[n] &&
         above_[n]->Bypassable()) {
    ++n;
  }
  if (n < wanted.size()) {
    // A map above still holds an element (or is changing): fuse it later, backing off.
    fusion_retry_ns_ = MonotonicNanos() + (int64_t{10'000'000} << std::min(fusion_tries_++, 6));
  } else {
    fusion_retry_ns_ = 0;
    fusion_tries_ = 0;
  }
  std::vector<Stage*> fused(wanted.begin(), wanted.begin() + static_cast<std::ptrdiff_t>(n));
  std::reverse(fused.begin(), fused.end());
  p_.PublishFusion(s_, fused);
  return fused;
}

void LiveIter::CheckFusion() {
  const uint64_t generation = p_.fusion_generation.load(std::memory_order_acquire);
  if (generation == fusion_seen_ &&
      (fusion_retry_ns_ == 0 || MonotonicNanos() < fusion_retry_ns_)) {
    return;
  }
  fusion_seen_ = generation;
  fusion_retry_ns_ = 0;
  if (s_.props.kind != OpKind::kMap) return;
  const Stage::Knobs knobs = s_.ReadKnobs();
  std::vector<Stage*> wanted;
  if (knobs.wants_async() && knobs.parallelism > 1) wanted = p_.WantedFusion(s_);
  std::reverse(wanted.begin(), wanted.end());
  if (wanted != fused_) rebuild_.store(true, std::memory_order_release);
}

bool LiveIter::Bypassable() const {
  return map_ != nullptr && puller_async() == nullptr && !map_->HasPending() && carry_.empty() &&
         !build_after_carry_ && !ended_ && !rebuild_.load(std::memory_order_acquire);
}

bool LiveIter::Next(Element* out) {
  if (s_.knob_generation.load(std::memory_order_acquire) !=
      seen_generation_.load(std::memory_order_relaxed)) {
    Reconfigure();
  }
  CheckFusion();
  if (rebuild_.load(std::memory_order_acquire) && !build_after_carry_ &&
      (map_ == nullptr || !map_->HasPending())) {
    Drain();
  }
  if (!carry_.empty()) {
    *out = std::move(carry_.front());
    carry_.pop_front();
    return true;
  }
  if (build_after_carry_) {
    build_after_carry_ = false;
    MutexLock lock(mu_);
    draining_ = false;
    if (cancelled_) return false;
    if (input_ended_) {
      ended_ = true;
    } else {
      delegate_ = Build();
      delegate_->Start();
    }
  }
  Iter* delegate = puller_delegate();
  if (ended_ || delegate == nullptr) return false;
  const bool ok = delegate->Next(out);
  if (!ok) ended_ = true;
  return ok;
}

void LiveIter::Cancel() {
  MutexLock lock(mu_);
  cancelled_ = true;
  if (delegate_ != nullptr) delegate_->Cancel();
}

bool LiveIter::Join(int64_t deadline_ns) {
  MutexLock lock(mu_);
  return delegate_ == nullptr || delegate_->Join(deadline_ns);
}

void LiveIter::Reconfigure() {
  MutexLock lock(mu_);
  if (cancelled_ || draining_ || delegate_ == nullptr) return;  // Build reads the knobs
  const Stage::Knobs knobs = s_.ReadKnobs();
  seen_generation_.store(knobs.generation, std::memory_order_release);
  const bool want_async = knobs.wants_async();
  if (async_ != nullptr && want_async && async_->ordered() == s_.Ordered(knobs)) {
    async_->SetBufferSize(knobs.buffer_size);
    async_->SetWorkers(knobs.parallelism);
    return;
  }
  if (async_ == nullptr && !want_async) return;  // inline it was, inline it stays
  rebuild_.store(true, std::memory_order_release);
}

bool LiveIter::Settled() const {
  MutexLock lock(mu_);
  if (rebuild_.load() || draining_) return false;
  return async_ == nullptr || async_->Settled();
}

}  // namespace sluice::pipeline::internal
