// The tuner's mixed-integer program (GLPK branch and cut): maximize throughput over workers,
// async stages, queue sizes and a cache within the CPU, disk and memory budgets, then, at that
// throughput, use as few threads and as little memory as possible (DESIGN.md, "The tuner").
//
// Per-output demands come from the analysis (docs/model.md): W_i wall, D_i CPU seconds per
// output, plus the turn wait of an ordered parallel stage. Variables:
//   X        outputs/s, 0 <= X <= X_max (an upper bound from the budgets, for the big-M rows)
//   a_i      binary: stage i is async (its own thread(s) behind a queue); fixed 1 where the
//            config already makes it async, and on the last stage of an input-bound job
//   q_i      integer workers, a_i <= q_i <= cap_i a_i (cap_i = 1 for sequential ops)
//   b_i      integer queue size, a_i <= b_i <= b*_i a_i (b*: the buffer rule below; >= 2 on the
//            last stage of an input-bound job)
//   y_k      binary: a cache after stage k, only where stages 0..k are deterministic (declared,
//            and not inspected as non-deterministic), epochs > 1 and one epoch at k fits M
//   z_k      = X y_k, linearized (z <= X_max y, z <= X, z >= X - X_max (1 - y))
// Constraints (tf.data's iterator model: a run of inline stages j..o-1 is served by the thread
// of the next async stage o; docs/model.md "Servers"):
//   servers  X W'(j..o) - sum_k W'(j..min(o,k)) z_k <= q_o  when a_o = 1 and a_j..a_{o-1} = 0
//   lock     X W'(j..f-1) - ...                     <= 1    (parallel workers pull one at a time;
//            f: the first of the parallelizable maps directly above o, which run on o's workers
//            outside the lock: the runtime's map fusion)
//            (W'_i = W_i / h_i: each thread is planned at most h = 90 % busy while it computes,
//            kServerHeadroom, and 50 % while it runs a stage that mostly waits, kWaitingHeadroom)
//   consumer X (W(j..n-1) + step) - ...           <= 1      when a_j..a_{n-1} = 0
//            (each conditional row is relaxed by big-M terms in the a's)
//   CPU      X (sum D + D_other) - sum_k D(0..k) z_k <= C
//   disk     X beta - sum_{k >= reader} beta z_k <= B
//   memory   sum_i (bytes_i b_i + held_i q_i) + sum_k cache_bytes_k y_k <= M, a worker holding
//            held_i = bytes_i + (V_{i-1} / V_i) bytes_{i-1}: its output and its inputs
//   cache    sum_k y_k <= 1
// Solve 1 maximizes X. Solve 2 fixes X >= (1 - 1e-3) X* and minimizes sum q_i plus weights
// totalling under one thread on worker and cache memory and on queues short of b*, so a job
// the consumer bounds gets no extra threads.
#include "tuner/program.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "tuner/glpk.h"

namespace sluice::tuner::internal {
namespace {

using analyzer::Analysis;

// The second solve keeps at least this share of the best throughput.
constexpr double kThroughputSlack = 1e-3;

struct Columns {
  int x = 0;
  std::vector<int> a, q, b, y, z;  // per stage; 0 where the column does not exist
};

// X, then per stage a_i, q_i, b_i and, where a cache may follow it, y_i and z_i.
void AddColumns(Lp& lp, const Model& m, Columns& c) {
  const int n = static_cast<int>(m.stages.size());
  c.x = lp.AddColumn("X", ColumnKind::kContinuous, 0, m.x_max);
  c.a.assign(n, 0);
  c.q.assign(n, 0);
  c.b.assign(n, 0);
  c.y.assign(n, 0);
  c.z.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    const StageModel& s = m.stages[i];
    const bool force = s.fixed_async || (m.input_bound && i == n - 1);
    c.a[i] = lp.AddColumn(fmt::format("a{}", i), ColumnKind::kBinary, force ? 1 : 0,
                          force || !s.too_fast ? 1 : 0);
    c.q[i] = lp.AddColumn(fmt::format("q{}", i), ColumnKind::kInteger, 0, s.cap);
    c.b[i] = lp.AddColumn(fmt::format("b{}", i), ColumnKind::kInteger, 0, s.buffer_target);
    if (s.cache_ok) {
      c.y[i] = lp.AddColumn(fmt::format("y{}", i), ColumnKind::kBinary, 0, 1);
      c.z[i] = lp.AddColumn(fmt::format("z{}", i), ColumnKind::kContinuous, 0, m.x_max);
    }
  }
}

// Workers and queue exist only on an async stage: a <= q <= cap a, a <= b <= b* a (the last
// stage of an input-bound job keeps a prefetch of at least 2).
void AddAsyncRows(Lp& lp, const Model& m, const Columns& c) {
  const int n = static_cast<int>(m.stages.size());
  for (int i = 0; i < n; ++i) {
    const StageModel& s = m.stages[i];
    lp.AddLower(Row().Add(c.q[i], 1).Add(c.a[i], -1), 0);
    lp.AddUpper(Row().Add(c.q[i], 1).Add(c.a[i], -s.cap), 0);
    const int min_buffer = m.input_bound && i == n - 1 && s.buffer_target >= 2 ? 2 : 1;
    lp.AddLower(Row().Add(c.b[i], 1).Add(c.a[i], -min_buffer), 0);
    lp.AddUpper(Row().Add(c.b[i], 1).Add(c.a[i], -s.buffer_target), 0);
  }
}

// z_k = X y_k (linearized): the throughput a cache after k relieves; at most one cache.
void AddCacheRows(Lp& lp, const Model& m, const Columns& c) {
  const int n = static_cast<int>(m.stages.size());
  double sum_cache = 0;
  Row one_cache;
  for (int k = 0; k < n; ++k) {
    if (!c.y[k]) continue;
    lp.AddUpper(Row().Add(c.z[k], 1).Add(c.y[k], -m.x_max), 0);
    lp.AddUpper(Row().Add(c.z[k], 1).Add(c.x, -1), 0);
    lp.AddUpper(Row().Add(c.x, 1).Add(c.z[k], -1).Add(c.y[k], m.x_max), m.x_max);
    one_cache.Add(c.y[k], 1);
    sum_cache += 1;
  }
  if (sum_cache > 0) lp.AddUpper(one_cache, 1);  // at most one cache
}

// X sum_{i in seg} W_i - sum_k (sum_{i in seg, i <= k} W_i) z_k: the segment's work per second
// not relieved by a cache (stages at or before the cache stop running once it is filled).
// With `planned`, each stage's work counts divided by its headroom (Headroom): the share of
// its thread's time it may take.
void AddWork(Row& row, const Model& m, const Columns& c, int from, int to, int owner,
             bool planned) {
  const int n = static_cast<int>(m.stages.size());
  for (int i = from; i <= to; ++i) {
    double w = i == owner ? m.stages[i].owner_wall : m.stages[i].wall;
    if (planned) w /= Headroom(m.stages[i]);
    row.Add(c.x, w);
    for (int k = i; k < n; ++k) row.Add(c.z[k], -w);
  }
}

bool HasWork(const Model& m, int from, int to) {
  for (int i = from; i <= to; ++i) {
    if (m.stages[i].owner_wall > 0) return true;
  }
  return false;
}

// Servers (tf.data's iterator model, docs/model.md "Servers"): an async stage o runs the inline
// stages j..o-1 upstream of it on its q_o workers; the row binds only when o is async and
// j..o-1 are not (big-M otherwise): X sum_i W_i / h_i <= q_o over j..o, and under its input
// lock X sum_i W_i / h_i <= 1 over j..o-1.
void AddServerRows(Lp& lp, const Model& m, const Columns& c, double big_m) {
  const int n = static_cast<int>(m.stages.size());
  for (int o = 0; o < n; ++o) {
    for (int j = 0; j <= o; ++j) {
      if (!HasWork(m, j, o)) continue;
      Row row;
      AddWork(row, m, c, j, o, o, true);
      row.Add(c.q[o], -1).Add(c.a[o], big_m);
      for (int i = j; i < o; ++i) row.Add(c.a[i], -big_m);
      lp.AddUpper(row, big_m);
      // Only the stages above the fused maps run under the lock (the runtime's map fusion).
      int locked_end = o;
      while (m.stages[o].parallelizable && locked_end > j && m.stages[locked_end - 1].fusible) {
        --locked_end;
      }
      if (j < locked_end && HasWork(m, j, locked_end - 1)) {
        Row lock;
        AddWork(lock, m, c, j, locked_end - 1, -1, true);
        lock.Add(c.a[o], big_m);
        for (int i = j; i < o; ++i) lock.Add(c.a[i], -big_m);
        lp.AddUpper(lock, 1 + big_m);
      }
    }
  }
}

// The consumer's thread runs the trailing inline stages j..n-1 and the training step.
void AddConsumerRows(Lp& lp, const Model& m, const Columns& c, double big_m) {
  const int n = static_cast<int>(m.stages.size());
  for (int j = 0; j <= n; ++j) {
    if (m.step <= 0 && (j == n || !HasWork(m, j, n - 1))) continue;
    Row row;
    if (j < n) AddWork(row, m, c, j, n - 1, -1, false);
    row.Add(c.x, m.step);
    for (int i = j; i < n; ++i) row.Add(c.a[i], -big_m);
    lp.AddUpper(row, 1);
  }
}

// The host's CPU, the disk and the memory budget.
void AddBudgetRows(Lp& lp, const Model& m, const Columns& c) {
  const int n = static_cast<int>(m.stages.size());
  // Host CPU: X (sum D_i + D_other) - sum_k (sum_{i<=k} D_i) z_k <= C.
  if (m.cores > 0) {
    Row row;
    double total = m.other_cpu, upto = 0;
    for (int i = 0; i < n; ++i) total += m.stages[i].cpu;
    row.Add(c.x, total);
    for (int k = 0; k < n; ++k) {
      upto += m.stages[k].cpu;
      row.Add(c.z[k], -upto);
    }
    if (total > 0) lp.AddUpper(row, m.cores);
  }
  // Disk: X bytes - (bytes) z_k <= B for a cache at or after the reading stage.
  if (m.disk_bps > 0 && m.disk_bytes > 0) {
    Row row;
    row.Add(c.x, m.disk_bytes / 1e6);
    for (int k = static_cast<int>(m.reader); k < n; ++k) row.Add(c.z[k], -m.disk_bytes / 1e6);
    lp.AddUpper(row, m.disk_bps / 1e6);
  }
  // Memory (MB): each async stage holds its queue and one element per worker; plus the cache.
  Row mem;
  for (int i = 0; i < n; ++i) {
    mem.Add(c.b[i], m.stages[i].bytes / 1e6).Add(c.q[i], m.stages[i].worker_bytes / 1e6);
    if (c.y[i]) mem.Add(c.y[i], m.stages[i].cache_bytes / 1e6);
  }
  lp.AddUpper(mem, (m.memory_budget - m.reserved) / 1e6);
}

// Builds the MILP described at the top of this file; the objective is set by the caller.
Lp BuildProgram(const Model& m, Columns& c) {
  Lp lp("sluice_tune");
  AddColumns(lp, m, c);
  AddAsyncRows(lp, m, c);
  AddCacheRows(lp, m, c);
  double total_wall = m.step;
  for (const StageModel& s : m.stages) total_wall += s.owner_wall;
  const double big_m = m.x_max * total_wall / kWaitingHeadroom + 1;
  AddServerRows(lp, m, c, big_m);
  AddConsumerRows(lp, m, c, big_m);
  AddBudgetRows(lp, m, c);
  return lp;
}

Solution ReadSolution(const Lp& lp, const Model& m, const Columns& c) {
  Solution s;
  s.x = lp.Value(c.x);
  for (size_t i = 0; i < m.stages.size(); ++i) {
    s.async.push_back(static_cast<int>(std::lround(lp.Value(c.a[i]))));
    s.workers.push_back(static_cast<int>(std::lround(lp.Value(c.q[i]))));
    s.buffer.push_back(static_cast<int>(std::lround(lp.Value(c.b[i]))));
    if (c.y[i] && lp.Value(c.y[i]) > 0.5) s.cache_after = i;
  }
  return s;
}

// The least memory the program can use: the queue element and the worker's element of every
// stage that must stay async.
double MinimumMemory(const Model& m, std::vector<std::string>& holders, const Analysis& a) {
  double bytes = m.reserved;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    const StageModel& s = m.stages[i];
    if (s.fixed_async || (m.input_bound && i + 1 == m.stages.size())) {
      const int min_buffer =
          m.input_bound && i + 1 == m.stages.size() && s.buffer_target >= 2 ? 2 : 1;
      if (s.bytes > 0) {
        bytes += min_buffer * s.bytes + s.worker_bytes;
        holders.push_back("'" + a.stages[i].name + "'");
      }
    }
  }
  return bytes;
}

// The first solve found no solution: says which budget cannot be met.
[[noreturn]] void FailInfeasible(const Model& m, const Analysis& a) {
  std::vector<std::string> holders;
  const double need = MinimumMemory(m, holders, a);
  if (need > m.memory_budget) {
    std::string who;
    for (size_t i = 0; i < holders.size(); ++i) {
      who += (i == 0 ? "" : i + 1 == holders.size() ? " and " : ", ") + holders[i];
    }
    Fail(
        "tune '{}': memory budget {} is below what the pipeline's buffers need: {} (stage{} {} "
        "keep{} at least one queued element and what one worker holds, and the runtime keeps "
        "up to {} of freed tensor buffers for reuse); raise --memory",
        a.pipeline, Bytes(m.memory_budget), Bytes(need), holders.size() == 1 ? "" : "s", who,
        holders.size() == 1 ? "s" : "", Bytes(m.reserved));
  }
  Fail("tune '{}': no configuration meets the budgets ({} cores, {} of memory)", a.pipeline,
       Num(m.cores), Bytes(m.memory_budget));
}

}  // namespace

Solution SolveProgram(Model& m, const Analysis& a) {
  Columns c;
  Lp lp = BuildProgram(m, c);
  lp.Maximize();
  lp.SetObjective(c.x, 1);
  const SolveResult first = lp.Solve("the throughput solve");
  if (first == SolveResult::kInfeasible) FailInfeasible(m, a);
  const double best = lp.Value(c.x);
  if (!(best > 0)) {
    Fail("tune '{}': the budgets leave the pipeline no throughput ({} cores, {} of memory)",
         a.pipeline, Num(m.cores), Bytes(m.memory_budget));
  }
  // Second solve: X >= (1 - slack) X*, minimize threads, plus weights below one thread in all on
  // memory held by workers and the cache and on queues short of their target size. The queue
  // targets are set for X* (they do not change X*: the first solve needs only b >= a).
  SetBufferTargets(m, a, best);
  c = Columns();
  lp = BuildProgram(m, c);
  lp.SetBounds(c.x, (1 - kThroughputSlack) * best, m.x_max);
  lp.Minimize();
  lp.SetObjective(c.x, 0);
  const double budget_mb = std::max(m.memory_budget / 1e6, 1e-6);
  double targets = 0;
  for (const StageModel& s : m.stages) targets += s.buffer_target;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    const StageModel& s = m.stages[i];
    lp.SetObjective(c.q[i], 1 + 0.25 * (s.worker_bytes / 1e6) / budget_mb);
    // Shortfall b*_i a_i - b_i, weighted to total at most 0.25.
    lp.SetObjective(c.a[i], 0.25 * s.buffer_target / targets);
    lp.SetObjective(c.b[i], -0.25 / targets);
    if (c.y[i]) lp.SetObjective(c.y[i], 0.25 * (s.cache_bytes / 1e6) / budget_mb);
  }
  const SolveResult second = lp.Solve("the thread-minimizing solve");
  if (second == SolveResult::kInfeasible) {
    Fail("tune '{}': GLPK found no solution at {} {}/s in the second solve", a.pipeline, Num(best),
         Plural(a.output_noun));
  }
  Solution s = ReadSolution(lp, m, c);
  s.x = best;
  return s;
}

}  // namespace sluice::tuner::internal
