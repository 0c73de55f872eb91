// Thread safety the compiler checks (STYLE habit 10): clang's -Wthread-safety annotations, as
// tf.data's TF_GUARDED_BY and abseil's ABSL_GUARDED_BY spell them, and the annotated mutexes
// they need. A build with -DSLUICE_THREAD_SAFETY=ON (clang only) makes every violation an
// error; under GCC the macros are empty.
//
// libstdc++'s std::mutex and std::lock_guard carry no capability attributes, so the analysis
// cannot see them: the runtime's locks are the wrappers below. The design is abseil's, reduced
// to what sluice uses:
//   Mutex          std::mutex with Lock / Unlock / TryLock (no lowercase lock(): a std guard
//                  around it would hide the lock from the analysis)
//   MutexLock      the scoped guard (std::lock_guard); MutexLock(mu, kAdoptLock) takes over a
//                  lock won by TryLock
//   SharedMutex    std::shared_mutex; ReaderLock and WriterLock are its guards
//   CondVar        std::condition_variable waiting on a Mutex the caller holds: the wait
//                  releases and retakes the std::mutex inside, so for the analysis the caller
//                  holds it throughout. Waits take no predicate (a lambda is analysed apart from
//                  the lock its caller holds): write `while (!ready_) cv_.Wait(mu_);`, which is
//                  exactly what std::condition_variable::wait(lock, pred) does.
//
// Members read under a lock are SLUICE_GUARDED_BY(mu_); functions that expect it held are
// SLUICE_REQUIRES(mu_). What the analysis cannot express (a value only its one writer reads
// unlocked) goes through the smallest accessor marked SLUICE_NO_THREAD_SAFETY_ANALYSIS, with a
// comment saying why.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define SLUICE_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define SLUICE_THREAD_ANNOTATION_(x)
#endif

#define SLUICE_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(capability(x))
#define SLUICE_SCOPED_CAPABILITY SLUICE_THREAD_ANNOTATION_(scoped_lockable)
#define SLUICE_GUARDED_BY(x) SLUICE_THREAD_ANNOTATION_(guarded_by(x))
#define SLUICE_PT_GUARDED_BY(x) SLUICE_THREAD_ANNOTATION_(pt_guarded_by(x))
#define SLUICE_ACQUIRED_BEFORE(...) SLUICE_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define SLUICE_ACQUIRED_AFTER(...) SLUICE_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define SLUICE_REQUIRES(...) SLUICE_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define SLUICE_REQUIRES_SHARED(...) \
  SLUICE_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define SLUICE_ACQUIRE(...) SLUICE_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define SLUICE_ACQUIRE_SHARED(...) SLUICE_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define SLUICE_RELEASE(...) SLUICE_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define SLUICE_RELEASE_SHARED(...) SLUICE_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define SLUICE_RELEASE_GENERIC(...) \
  SLUICE_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
#define SLUICE_TRY_ACQUIRE(...) SLUICE_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define SLUICE_EXCLUDES(...) SLUICE_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define SLUICE_ASSERT_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(assert_capability(x))
#define SLUICE_RETURN_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(lock_returned(x))
#define SLUICE_NO_THREAD_SAFETY_ANALYSIS SLUICE_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace sluice {

class CondVar;

class SLUICE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() SLUICE_ACQUIRE() { mu_.lock(); }
  void Unlock() SLUICE_RELEASE() { mu_.unlock(); }
  bool TryLock() SLUICE_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// MutexLock(mu, kAdoptLock): `mu` is already held (TryLock won it); the guard releases it.
struct AdoptLock {};
inline constexpr AdoptLock kAdoptLock{};

class SLUICE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SLUICE_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  MutexLock(Mutex& mu, AdoptLock) SLUICE_REQUIRES(mu) : mu_(mu) {}
  ~MutexLock() SLUICE_RELEASE() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

class SLUICE_CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() SLUICE_ACQUIRE() { mu_.lock(); }
  void Unlock() SLUICE_RELEASE() { mu_.unlock(); }
  void LockShared() SLUICE_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() SLUICE_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Shared (reader) ownership for a scope: std::shared_lock.
class SLUICE_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) SLUICE_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.LockShared(); }
  ~ReaderLock() SLUICE_RELEASE() { mu_.UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

// Exclusive (writer) ownership for a scope: std::unique_lock on a std::shared_mutex.
class SLUICE_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) SLUICE_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~WriterLock() SLUICE_RELEASE() { mu_.Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A std::condition_variable whose waits take the Mutex the caller holds. It is held again when
// a wait returns, by a wake-up, a spurious one, a time-out or an exception alike.
class CondVar {
 public:
  void Wait(Mutex& mu) SLUICE_REQUIRES(mu) {
    Adopted lock(mu);
    cv_.wait(lock.lock);
  }
  // False once `timeout` has passed without a notification.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout) SLUICE_REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout) == std::cv_status::no_timeout;
  }
  void NotifyOne() noexcept { cv_.notify_one(); }
  void NotifyAll() noexcept { cv_.notify_all(); }

 private:
  // The caller's lock seen as a std::unique_lock for the wait, and handed back (not unlocked)
  // when the wait returns.
  struct Adopted {
    explicit Adopted(Mutex& mu) : lock(mu.mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    std::unique_lock<std::mutex> lock;
  };
  std::condition_variable cv_;
};

}  // namespace sluice
