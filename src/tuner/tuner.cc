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
#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/tuner/tuner.h"

namespace sluice::tuner {
namespace {

using analyzer::Analysis;
using analyzer::Knobs;
using analyzer::LimitKind;
using analyzer::StageAnalysis;

constexpr double kInf = std::numeric_limits<double>::infinity();
// The second solve keeps at least this share of the best throughput.
constexpr double kThroughputSlack = 1e-3;
// Buffer rule: cover a dip of this many standard deviations of one interval's output.
constexpr double kBufferSigmas = 2.0;
constexpr int kMaxBuffer = 64;
// A thread planned busier than this starves its neighbours whenever its pace varies (a tandem
// of near-saturated servers loses throughput to blocking), so each server's row keeps this
// share of its workers' time free.
constexpr double kServerHeadroom = 0.9;
// Workers that mostly wait (sleep, I/O: CPU under kWaitingShare of their wall time) are planned at
// most half busy: each element's wake-up waits longer for a core as the cores fill, so their wall
// time grows with the load the plan adds, while another waiting worker costs almost no CPU (on 2
// cores the synthetic example's 100 us sleep stage took 6.7 ms per batch on one worker beside
// saturated burn workers, 5.8 ms alone).
constexpr double kWaitingHeadroom = 0.5;
constexpr double kWaitingShare = 0.3;
// Knob changes found after the solve (the polish) must improve the prediction by this share.
constexpr double kPolishGain = 0.02;
// Handing an element to another thread (a queue, a worker's input lock, waking a sleeper) costs
// from a fraction of a microsecond to tens of microseconds when threads contend; a stage whose
// elements take less than this is never made async or given workers by the tuner.
constexpr double kMinHandoffSeconds = 20e-6;
// A stage whose CPU time is at least this share of its wall time computes rather than waits.
constexpr double kCpuBoundShare = 0.7;

// Work that mostly waits rather than computes.
bool Waiting(double wall, double cpu) { return wall > 0 && cpu < kWaitingShare * wall; }

// ---- Formatting for the sentences ----

using ::sluice::Bytes;
using ::sluice::Duration;
using ::sluice::Num;
using ::sluice::Plural;

// ---- GLPK ----

struct LpDeleter {
  void operator()(glp_prob* lp) const { glp_delete_prob(lp); }
};
using Lp = std::unique_ptr<glp_prob, LpDeleter>;

const char* IntoptError(int rc) {
  switch (rc) {
    case GLP_EBOUND:
      return "a variable has incorrect bounds";
    case GLP_EROOT:
      return "no optimal basis for the root relaxation";
    case GLP_ENOPFS:
      return "no primal feasible solution";
    case GLP_ENODFS:
      return "the relaxation is unbounded";
    case GLP_EFAIL:
      return "the search failed";
    case GLP_EMIPGAP:
      return "the relative gap tolerance was reached";
    case GLP_ETMLIM:
      return "the time limit was reached";
    case GLP_ESTOP:
      return "the search was stopped";
    default:
      return "unknown error";
  }
}

enum class SolveResult { kOptimal, kFeasible, kInfeasible };

// The one checking helper every solver call goes through: runs glp_intopt (presolve on, branch
// and cut) and maps its return code and status to a result or a sluice::Error.
SolveResult CheckedIntopt(glp_prob* lp, const std::string& what) {
  glp_iocp parm;
  glp_init_iocp(&parm);
  parm.presolve = GLP_ON;
  parm.msg_lev = GLP_MSG_OFF;
  parm.tm_lim = 10'000;  // ms; the problems have tens of variables
  parm.gmi_cuts = GLP_ON;
  parm.mir_cuts = GLP_ON;
  const int rc = glp_intopt(lp, &parm);
  if (rc == GLP_ENOPFS) return SolveResult::kInfeasible;
  const int status = glp_mip_status(lp);
  if (rc != 0 && rc != GLP_ETMLIM && rc != GLP_EMIPGAP) {
    Fail("tune: GLPK failed on {}: glp_intopt returned {} ({})", what, rc, IntoptError(rc));
  }
  switch (status) {
    case GLP_OPT:
      return SolveResult::kOptimal;
    case GLP_FEAS:
      return SolveResult::kFeasible;
    case GLP_NOFEAS:
      return SolveResult::kInfeasible;
    default:
      Fail("tune: GLPK failed on {}: no solution (status {}, {})", what, status,
           rc == 0 ? "no error" : IntoptError(rc));
  }
}

// A sparse row under construction: coefficients by column (GLPK rejects repeated columns).
class Row {
 public:
  Row& Add(int col, double coef) {
    if (col > 0 && coef != 0) coefs_[col] += coef;
    return *this;
  }
  // Adds the row to `lp` with bound type `type` (GLP_UP, GLP_LO, GLP_FX, ...).
  void AddTo(glp_prob* lp, int type, double lb, double ub) const {
    const int row = glp_add_rows(lp, 1);
    std::vector<int> ind(1);
    std::vector<double> val(1);
    for (const auto& [col, coef] : coefs_) {
      ind.push_back(col);
      val.push_back(coef);
    }
    glp_set_mat_row(lp, row, static_cast<int>(ind.size()) - 1, ind.data(), val.data());
    glp_set_row_bnds(lp, row, type, lb, ub);
  }

 private:
  std::map<int, double> coefs_;
};

// ---- The model's inputs ----

struct StageModel {
  double wall = 0;          // W_i, s per output
  double owner_wall = 0;    // W_i plus the turn wait when its workers emit in order
  double cpu = 0;           // D_i, s per output
  double bytes = 0;         // bytes per element
  double worker_bytes = 0;  // what one worker holds: its output and the input it consumes
  bool parallelizable = false;
  bool fusible = false;      // a parallelizable map: runs on the workers of a parallel map stage
                             // directly below it, outside their input lock (map fusion)
  bool fixed_async = false;  // async in the config: it stays async
  int cap = 1;               // most workers
  int share_cap = 0;         // most ordered workers the cores keep running (0: no limit beyond
                             // cap); applied after the program, by the polish
  double share_cpu_total = 0;  // the CPU demand the share is taken of (with share_cap)
  double rate_cv = -1;       // CV of its per-interval output count; -1 unknown
  int buffer_target = 1;     // b*_i
  bool reorder = false;      // ordered now, and the config allows turning `deterministic` off
  bool too_fast = false;     // per element cheaper than a hand-off: stays inline
  bool cache_ok = false;     // a cache after it may be chosen
  double cache_bytes = 0;
  double cache_elements = 0;
};

struct Model {
  std::vector<StageModel> stages;
  double step = 0;
  double other_cpu = 0;
  double cores = 0;
  double memory_budget = 0;
  double disk_bytes = 0;     // per output
  double disk_bps = 0;       // bytes/s; 0: no bound
  size_t reader = 0;         // the first stage reading storage
  bool input_bound = false;  // the consumer waits and has a step to overlap: keep a prefetch
  double x_max = 0;
  double interval = 0.1;  // s between the series' samples
};

// Coefficient of variation of the per-sample increments of `counts` over the last `samples`.
double IncrementCv(const std::vector<int64_t>& counts, size_t samples) {
  if (counts.size() < 3) return -1;
  const size_t n = std::min(samples > 1 ? samples - 1 : counts.size() - 1, counts.size() - 1);
  double sum = 0, sum2 = 0;
  for (size_t i = counts.size() - n; i < counts.size(); ++i) {
    const double d = static_cast<double>(counts[i] - counts[i - 1]);
    sum += d;
    sum2 += d * d;
  }
  const double mean = sum / n;
  if (n < 2 || mean <= 0) return -1;
  const double var = std::max(0.0, sum2 / n - mean * mean);
  return std::sqrt(var) / mean;
}

bool Deterministic(const trace::StageTrace& s) {
  return s.deterministic && s.inspected != "non-deterministic";
}

// The element count of one epoch at each stage, from the counts of completed epochs; empty when
// no epoch completed in the trace.
std::vector<double> EpochElements(const trace::PipelineTrace& p) {
  std::vector<double> out;
  if (p.epochs_completed < 1) return out;
  for (const trace::StageTrace& s : p.stages) {
    out.push_back(static_cast<double>(s.elements_out) / static_cast<double>(p.epochs_completed));
  }
  return out;
}

// ---- The program ----

struct Columns {
  int x = 0;
  std::vector<int> a, q, b, y, z;  // per stage; 0 where the column does not exist
};

struct Solution {
  double x = 0;
  std::vector<int> async, workers, buffer;
  std::optional<size_t> cache_after;
};

// Queue targets, from a fluid approximation of the queue between a stage and its consumer
// (normal approximation of one interval's output): over an interval tau the stage emits
// lambda tau elements with standard deviation CV lambda tau; a queue of
// b* = ceil(z CV lambda tau), z = 2, covers a dip of two standard deviations, so the consumer
// finds it empty in about 2.3 % of intervals. lambda = V_i x, at the planned throughput x.
void SetBufferTargets(Model& m, const Analysis& a, double x) {
  const size_t n = m.stages.size();
  for (size_t i = 0; i < n; ++i) {
    StageModel& sm = m.stages[i];
    const double per_interval = a.stages[i].visit_ratio * x * m.interval;
    int target = 1;
    if (sm.rate_cv > 0 && std::isfinite(per_interval)) {
      target = static_cast<int>(
          std::min<double>(kMaxBuffer, std::ceil(kBufferSigmas * sm.rate_cv * per_interval)));
    }
    target = std::clamp(target, 1, kMaxBuffer);
    if (m.input_bound && i + 1 == n) target = std::max(target, 2);
    sm.buffer_target = target;
  }
}

// The busiest a thread is planned while it runs stage i: kWaitingHeadroom where the stage mostly
// waits and more workers could share its waits, kServerHeadroom otherwise (a sequential stage
// gets one thread however busy: planning it half busy would only hide the rate it can reach).
double Headroom(const StageModel& s) {
  return s.parallelizable && s.cap > 1 && Waiting(s.owner_wall, s.cpu) ? kWaitingHeadroom
                                                                       : kServerHeadroom;
}

// Builds the MILP described at the top of this file; the objective is set by the caller.
Lp BuildProgram(const Model& m, Columns& c) {
  Lp lp(glp_create_prob());
  glp_set_prob_name(lp.get(), "sluice_tune");
  const int n = static_cast<int>(m.stages.size());
  auto add_col = [&](const std::string& name, int kind, int type, double lb, double ub) {
    const int col = glp_add_cols(lp.get(), 1);
    glp_set_col_name(lp.get(), col, name.c_str());
    glp_set_col_kind(lp.get(), col, kind);
    glp_set_col_bnds(lp.get(), col, lb == ub ? GLP_FX : type, lb, ub);
    return col;
  };
  c.x = add_col("X", GLP_CV, GLP_DB, 0, m.x_max);
  c.a.assign(n, 0);
  c.q.assign(n, 0);
  c.b.assign(n, 0);
  c.y.assign(n, 0);
  c.z.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    const StageModel& s = m.stages[i];
    const bool force = s.fixed_async || (m.input_bound && i == n - 1);
    c.a[i] =
        add_col(fmt::format("a{}", i), GLP_BV, GLP_DB, force ? 1 : 0, force || !s.too_fast ? 1 : 0);
    c.q[i] = add_col(fmt::format("q{}", i), GLP_IV, GLP_DB, 0, s.cap);
    c.b[i] = add_col(fmt::format("b{}", i), GLP_IV, GLP_DB, 0, s.buffer_target);
    if (s.cache_ok) {
      c.y[i] = add_col(fmt::format("y{}", i), GLP_BV, GLP_DB, 0, 1);
      c.z[i] = add_col(fmt::format("z{}", i), GLP_CV, GLP_DB, 0, m.x_max);
    }
  }
  glp_prob* p = lp.get();
  // Workers and queue exist only on an async stage: a <= q <= cap a, a <= b <= b* a (the last
  // stage of an input-bound job keeps a prefetch of at least 2).
  for (int i = 0; i < n; ++i) {
    const StageModel& s = m.stages[i];
    Row().Add(c.q[i], 1).Add(c.a[i], -1).AddTo(p, GLP_LO, 0, 0);
    Row().Add(c.q[i], 1).Add(c.a[i], -s.cap).AddTo(p, GLP_UP, 0, 0);
    const int min_buffer = m.input_bound && i == n - 1 && s.buffer_target >= 2 ? 2 : 1;
    Row().Add(c.b[i], 1).Add(c.a[i], -min_buffer).AddTo(p, GLP_LO, 0, 0);
    Row().Add(c.b[i], 1).Add(c.a[i], -s.buffer_target).AddTo(p, GLP_UP, 0, 0);
  }
  // z_k = X y_k (linearized): the throughput a cache after k relieves.
  double sum_cache = 0;
  Row one_cache;
  for (int k = 0; k < n; ++k) {
    if (!c.y[k]) continue;
    Row().Add(c.z[k], 1).Add(c.y[k], -m.x_max).AddTo(p, GLP_UP, 0, 0);
    Row().Add(c.z[k], 1).Add(c.x, -1).AddTo(p, GLP_UP, 0, 0);
    Row().Add(c.x, 1).Add(c.z[k], -1).Add(c.y[k], m.x_max).AddTo(p, GLP_UP, 0, m.x_max);
    one_cache.Add(c.y[k], 1);
    sum_cache += 1;
  }
  if (sum_cache > 0) one_cache.AddTo(p, GLP_UP, 0, 1);  // at most one cache

  double total_wall = m.step;
  for (const StageModel& s : m.stages) total_wall += s.owner_wall;
  const double big_m = m.x_max * total_wall / kWaitingHeadroom + 1;
  // X sum_{i in seg} W_i - sum_k (sum_{i in seg, i <= k} W_i) z_k: the segment's work per second
  // not relieved by a cache (stages at or before the cache stop running once it is filled).
  // With `planned`, each stage's work counts divided by its headroom (Headroom): the share of
  // its thread's time it may take.
  auto add_work = [&](Row& row, int from, int to, int owner, bool planned) {
    for (int i = from; i <= to; ++i) {
      double w = i == owner ? m.stages[i].owner_wall : m.stages[i].wall;
      if (planned) w /= Headroom(m.stages[i]);
      row.Add(c.x, w);
      for (int k = i; k < n; ++k) row.Add(c.z[k], -w);
    }
  };
  auto has_work = [&](int from, int to) {
    for (int i = from; i <= to; ++i) {
      if (m.stages[i].owner_wall > 0) return true;
    }
    return false;
  };
  // Servers (tf.data's iterator model, docs/model.md "Servers"): an async stage o runs the inline
  // stages j..o-1 upstream of it on its q_o workers; the row binds only when o is async and
  // j..o-1 are not (big-M otherwise): X sum_i W_i / h_i <= q_o over j..o, and under its input
  // lock X sum_i W_i / h_i <= 1 over j..o-1.
  for (int o = 0; o < n; ++o) {
    for (int j = 0; j <= o; ++j) {
      if (!has_work(j, o)) continue;
      Row row;
      add_work(row, j, o, o, true);
      row.Add(c.q[o], -1).Add(c.a[o], big_m);
      for (int i = j; i < o; ++i) row.Add(c.a[i], -big_m);
      row.AddTo(p, GLP_UP, 0, big_m);
      // Only the stages above the fused maps run under the lock (the runtime's map fusion).
      int locked_end = o;
      while (m.stages[o].parallelizable && locked_end > j && m.stages[locked_end - 1].fusible) {
        --locked_end;
      }
      if (j < locked_end && has_work(j, locked_end - 1)) {
        Row lock;
        add_work(lock, j, locked_end - 1, -1, true);
        lock.Add(c.a[o], big_m);
        for (int i = j; i < o; ++i) lock.Add(c.a[i], -big_m);
        lock.AddTo(p, GLP_UP, 0, 1 + big_m);
      }
    }
  }
  // The consumer's thread runs the trailing inline stages j..n-1 and the training step.
  for (int j = 0; j <= n; ++j) {
    if (m.step <= 0 && (j == n || !has_work(j, n - 1))) continue;
    Row row;
    if (j < n) add_work(row, j, n - 1, -1, false);
    row.Add(c.x, m.step);
    for (int i = j; i < n; ++i) row.Add(c.a[i], -big_m);
    row.AddTo(p, GLP_UP, 0, 1);
  }
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
    if (total > 0) row.AddTo(p, GLP_UP, 0, m.cores);
  }
  // Disk: X bytes - (bytes) z_k <= B for a cache at or after the reading stage.
  if (m.disk_bps > 0 && m.disk_bytes > 0) {
    Row row;
    row.Add(c.x, m.disk_bytes / 1e6);
    for (int k = static_cast<int>(m.reader); k < n; ++k) row.Add(c.z[k], -m.disk_bytes / 1e6);
    row.AddTo(p, GLP_UP, 0, m.disk_bps / 1e6);
  }
  // Memory (MB): each async stage holds its queue and one element per worker; plus the cache.
  Row mem;
  for (int i = 0; i < n; ++i) {
    mem.Add(c.b[i], m.stages[i].bytes / 1e6).Add(c.q[i], m.stages[i].worker_bytes / 1e6);
    if (c.y[i]) mem.Add(c.y[i], m.stages[i].cache_bytes / 1e6);
  }
  mem.AddTo(p, GLP_UP, 0, m.memory_budget / 1e6);
  return lp;
}

Solution ReadSolution(glp_prob* lp, const Model& m, const Columns& c) {
  Solution s;
  s.x = glp_mip_col_val(lp, c.x);
  for (size_t i = 0; i < m.stages.size(); ++i) {
    s.async.push_back(static_cast<int>(std::lround(glp_mip_col_val(lp, c.a[i]))));
    s.workers.push_back(static_cast<int>(std::lround(glp_mip_col_val(lp, c.q[i]))));
    s.buffer.push_back(static_cast<int>(std::lround(glp_mip_col_val(lp, c.b[i]))));
    if (c.y[i] && glp_mip_col_val(lp, c.y[i]) > 0.5) s.cache_after = i;
  }
  return s;
}

// The least memory the program can use: the queue element and the worker's element of every
// stage that must stay async.
double MinimumMemory(const Model& m, std::vector<std::string>& holders, const Analysis& a) {
  double bytes = 0;
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

// Runs both solves: the best throughput, then the fewest threads and least memory at it.
Solution SolveProgram(Model& m, const Analysis& a) {
  Columns c;
  Lp lp = BuildProgram(m, c);
  glp_set_obj_dir(lp.get(), GLP_MAX);
  glp_set_obj_coef(lp.get(), c.x, 1);
  const SolveResult first = CheckedIntopt(lp.get(), "the throughput solve");
  if (first == SolveResult::kInfeasible) {
    std::vector<std::string> holders;
    const double need = MinimumMemory(m, holders, a);
    if (need > m.memory_budget) {
      std::string who;
      for (size_t i = 0; i < holders.size(); ++i) {
        who += (i == 0 ? "" : i + 1 == holders.size() ? " and " : ", ") + holders[i];
      }
      Fail(
          "tune '{}': memory budget {} is below what the pipeline's buffers need: {} (stage{} {} "
          "keep{} at least one queued element and what one worker holds); raise --memory",
          a.pipeline, Bytes(m.memory_budget), Bytes(need), holders.size() == 1 ? "" : "s", who,
          holders.size() == 1 ? "s" : "");
    }
    Fail("tune '{}': no configuration meets the budgets ({} cores, {} of memory)", a.pipeline,
         Num(m.cores), Bytes(m.memory_budget));
  }
  const double best = glp_mip_col_val(lp.get(), c.x);
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
  glp_set_col_bnds(lp.get(), c.x, GLP_DB, (1 - kThroughputSlack) * best, m.x_max);
  glp_set_obj_dir(lp.get(), GLP_MIN);
  glp_set_obj_coef(lp.get(), c.x, 0);
  const double budget_mb = std::max(m.memory_budget / 1e6, 1e-6);
  double targets = 0;
  for (const StageModel& s : m.stages) targets += s.buffer_target;
  for (size_t i = 0; i < m.stages.size(); ++i) {
    const StageModel& s = m.stages[i];
    glp_set_obj_coef(lp.get(), c.q[i], 1 + 0.25 * (s.worker_bytes / 1e6) / budget_mb);
    // Shortfall b*_i a_i - b_i, weighted to total at most 0.25.
    glp_set_obj_coef(lp.get(), c.a[i], 0.25 * s.buffer_target / targets);
    glp_set_obj_coef(lp.get(), c.b[i], -0.25 / targets);
    if (c.y[i]) glp_set_obj_coef(lp.get(), c.y[i], 0.25 * (s.cache_bytes / 1e6) / budget_mb);
  }
  const SolveResult second = CheckedIntopt(lp.get(), "the thread-minimizing solve");
  if (second == SolveResult::kInfeasible) {
    Fail("tune '{}': GLPK found no solution at {} {}/s in the second solve", a.pipeline, Num(best),
         Plural(a.output_noun));
  }
  Solution s = ReadSolution(lp.get(), m, c);
  s.x = best;
  return s;
}

Model BuildModel(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o) {
  const size_t n = a.stages.size();
  if (p.stages.size() != n) {
    Fail("tune '{}': the trace has {} stages and the analysis {}", a.pipeline, p.stages.size(), n);
  }
  if (n == 0) Fail("tune '{}': the pipeline has no stages", a.pipeline);
  Model m;
  m.cores = o.cores.value_or(a.cores);
  if (!(m.cores > 0)) Fail("tune '{}': the CPU budget must be positive (--cores)", a.pipeline);
  if (o.memory_bytes) {
    if (*o.memory_bytes <= 0) Fail("tune '{}': the memory budget must be positive", a.pipeline);
    m.memory_budget = static_cast<double>(*o.memory_bytes);
  } else {
    const double free = static_cast<double>(a.memory_bytes - a.rss_bytes);
    m.memory_budget = a.memory_bytes > 0 ? std::max(free, 0.0) / 2 : 1e9;
  }
  m.step = std::max(0.0, a.consumer_step_seconds);
  m.other_cpu = a.other_cpu_demand;  // may be slightly negative; Predict uses it as is
  m.disk_bytes = a.disk_bytes_per_output;
  m.disk_bps = a.disk_mb_per_s * 1e6;
  for (size_t i = 0; i < n; ++i) {
    if (a.stages[i].op == "read_file" || a.stages[i].op == "read_lines") {
      m.reader = i;
      break;
    }
  }
  // A prefetch pays when the consumer starves and has a training step to overlap with; a consumer
  // that only drains the pipeline (a step under a hand-off, or ten times faster than the host's
  // cores could ever feed it) would gain nothing from another thread but its hand-off cost (on
  // the suite's cacheable pipeline a forced prefetch measured 13-23 % slower).
  // The CPU demand per output of the whole pipeline (with the rest of the process).
  double pipeline_cpu = std::max(0.0, a.other_cpu_demand);
  for (const StageAnalysis& s : a.stages) pipeline_cpu += s.cpu_demand;
  const bool drain = m.step > 0 && pipeline_cpu > 0 && 1 / m.step > 10 * m.cores / pipeline_cpu;
  m.input_bound =
      a.input_bound.verdict != analyzer::Verdict::kNot && m.step >= kMinHandoffSeconds && !drain;
  const int cap = o.max_workers > 0
                      ? o.max_workers
                      : std::min(128, std::max(8, static_cast<int>(std::ceil(2 * m.cores))));
  const bool many_epochs = o.epochs > 1 || o.epochs < 0;
  const std::vector<double> epoch_elements = EpochElements(p);
  bool deterministic_so_far = true;
  // GLPK aborts the process on a NaN or infinite coefficient: reject such inputs here.
  auto check = [&](const std::string& stage, const char* what, double v) {
    if (!std::isfinite(v) || v < 0) {
      Fail("tune '{}': stage '{}': {} is {}, not a finite non-negative number", a.pipeline, stage,
           what, v);
    }
  };
  check("(consumer)", "the consumer step", m.step);
  if (!std::isfinite(m.other_cpu)) {
    Fail("tune '{}': the CPU demand outside the stages is {}, not a finite number", a.pipeline,
         m.other_cpu);
  }
  check("(disk)", "the bytes read per output", m.disk_bytes);
  check("(disk)", "the disk bandwidth", m.disk_bps);
  for (size_t i = 0; i < n; ++i) {
    const StageAnalysis& s = a.stages[i];
    check(s.name, "the wall demand", s.wall_demand);
    check(s.name, "the CPU demand", s.cpu_demand);
    check(s.name, "the turn wait", s.turn_wait_demand);
    check(s.name, "the bytes per element", s.bytes_per_element);
    check(s.name, "the visit ratio", s.visit_ratio);
    StageModel sm;
    sm.wall = s.wall_demand;
    sm.reorder = s.parallelizable && s.ordered && o.reorder_allowed.count(s.name) > 0;
    // Unordered, the workers never wait for their turn.
    sm.owner_wall = s.wall_demand + (s.ordered && !sm.reorder ? s.turn_wait_demand : 0.0);
    sm.cpu = s.cpu_demand;
    sm.bytes = s.bytes_per_element;
    // A worker holds the element it makes and what it consumes for it: its input element, or
    // for a stage that gathers (a batch), the inputs of one output while it stacks them.
    const double inputs_per_output =
        i > 0 && s.visit_ratio > 0 ? a.stages[i - 1].visit_ratio / s.visit_ratio : 0;
    sm.worker_bytes =
        s.bytes_per_element + (i > 0 ? inputs_per_output * a.stages[i - 1].bytes_per_element : 0);
    sm.parallelizable = s.parallelizable;
    sm.fusible = i > 0 && s.parallelizable;
    sm.fixed_async = s.async || s.parallelism > 1 || s.buffer_size > 0;
    sm.cap = s.parallelizable ? std::max(cap, s.parallelism) : 1;
    const double service = s.visit_ratio > 0 ? s.wall_demand / s.visit_ratio : 0;
    if (service < kMinHandoffSeconds && s.elements > 0) {
      sm.too_fast = true;
      sm.cap = std::min(sm.cap, s.parallelism);  // no more workers than it has
    }
    if (i < p.stage_series.size()) {
      sm.rate_cv = IncrementCv(p.stage_series[i].elements_out, a.window.samples);
    }
    deterministic_so_far = deterministic_so_far && Deterministic(p.stages[i]);
    if (many_epochs && deterministic_so_far && !epoch_elements.empty()) {
      sm.cache_elements = epoch_elements[i];
      sm.cache_bytes = epoch_elements[i] * s.bytes_per_element;
      sm.cache_ok = sm.cache_bytes > 0 && sm.cache_bytes <= m.memory_budget;
    }
    m.stages.push_back(sm);
  }
  // Ordered workers of a CPU-bound stage beyond its share of the cores wait for each other: with
  // more such workers than the cores its CPU demand would get on a saturated host, one of them is
  // always descheduled and the others idle until it emits (on 2 cores a third worker for a
  // 400 us burn stage measured 2-6 % slower in 15 of 18 configs, docs/benchmarks.md). The polish
  // gives such a stage no more workers than that share.
  // The share counts the CPU demand left after a cache upstream of the stage, where one may go.
  for (size_t i = 0; i < n; ++i) {
    StageModel& sm = m.stages[i];
    const bool ordered = a.stages[i].ordered && !sm.reorder;
    double total_cpu = pipeline_cpu;
    for (size_t k = 0; k < i; ++k) {
      if (!m.stages[k].cache_ok) continue;
      double left = std::max(0.0, m.other_cpu);
      for (size_t j = k + 1; j < n; ++j) left += m.stages[j].cpu;
      total_cpu = std::min(total_cpu, left);
    }
    if (!ordered || !sm.parallelizable || total_cpu <= 0 || sm.cpu < kCpuBoundShare * sm.wall) {
      continue;
    }
    const int share = std::max(1, static_cast<int>(std::ceil(m.cores * sm.cpu / total_cpu - 1e-9)));
    sm.share_cap = std::min(sm.cap, share);
    sm.share_cpu_total = total_cpu;
  }
  // An upper bound on X, for the big-M rows: the best of no cache and each cache, taking every
  // stage alone on its most workers, the CPU and disk budgets and the consumer.
  auto bound_after = [&](int k) {
    double x = m.step > 0 ? 1 / m.step : kInf;
    double cpu = m.other_cpu;
    for (size_t i = 0; i < n; ++i) {
      if (static_cast<int>(i) <= k) continue;
      cpu += m.stages[i].cpu;
      // Inline, a stage skips its turn wait: its plain wall time gives the looser bound.
      if (m.stages[i].wall > 0) x = std::min(x, m.stages[i].cap / m.stages[i].wall);
    }
    if (cpu > 0) x = std::min(x, m.cores / cpu);
    if (m.disk_bps > 0 && m.disk_bytes > 0 && k < static_cast<int>(m.reader)) {
      x = std::min(x, m.disk_bps / m.disk_bytes);
    }
    return x;
  };
  m.x_max = bound_after(-1);
  for (size_t k = 0; k < n; ++k) {
    if (!m.stages[k].cache_ok) continue;
    const double bound = bound_after(static_cast<int>(k));
    // A cache that would leave the model nothing to bound the rate by (no work after it and no
    // training step) cannot be predicted: not offered.
    if (!std::isfinite(bound)) {
      m.stages[k].cache_ok = false;
      continue;
    }
    m.x_max = std::max(m.x_max, bound);
  }
  if (!std::isfinite(m.x_max)) m.x_max = 1e6;
  m.interval = o.sample_interval;
  SetBufferTargets(m, a, m.x_max);
  return m;
}

// The work of async stage `owner`'s thread(s) under `knobs`: the maps fused onto its workers
// (run outside the input lock) and the inline stages it pulls under the lock, each list first
// upstream first; and the wall time per output of all of it (stages a cache relieves excluded).
struct Group {
  std::vector<size_t> fused, locked;
  double wall = 0;
};
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

// Queued and in-flight elements of the async stages, plus the cache.
double Memory(const Model& m, const Knobs& knobs) {
  double bytes = 0;
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

// Map fusion as a knob change: async stage `i`, a parallelizable map, turns inline and its
// workers join those of the parallel map stage below it (past inline fusible maps only), so the
// maps run as one group of workers with no hand-off between them. None where that shape is absent.
template <typename Most>
std::optional<Knobs> FoldIntoGroup(const Model& m, const Knobs& knobs, size_t i, const Most& most) {
  const auto async = [&](size_t j) {
    return knobs.stages[j].parallelism > 1 || knobs.stages[j].buffer_size > 0;
  };
  if (!m.stages[i].fusible || !async(i) || (knobs.cache_after && *knobs.cache_after >= i)) {
    return std::nullopt;
  }
  size_t o = i + 1;
  while (o < knobs.stages.size() && !async(o) && m.stages[o].fusible) ++o;
  if (o >= knobs.stages.size() || !async(o) || !m.stages[o].parallelizable) return std::nullopt;
  Knobs t = knobs;
  t.stages[i] = analyzer::StageKnobs{1, 0, knobs.stages[i].ordered};
  const int workers = knobs.stages[o].parallelism + knobs.stages[i].parallelism;
  t.stages[o].parallelism = std::min(workers, std::max(1, std::min(m.stages[o].cap, most(o, t))));
  if (t.stages[o].parallelism < 2) return std::nullopt;
  return t;
}

// The program is linear, so it takes an ordered stage's turn wait as measured at the traced
// workers and ignores queueing for an input lock; the analyzer's prediction models both. The
// polish walks from the solution one worker at a time, judged by the prediction: a worker less
// where the prediction does not drop (the program's headroom can ask for a worker the CPU
// cannot feed, and a CPU-bound thread beyond what the cores run only adds preemption), else a
// worker more where it gains kPolishGain, within the memory budget and the workers' cap. Whether
// a stage is async stays as the program chose. A stage whose config allows reordering runs
// unordered whenever it has several workers.
Knobs Polish(const Model& m, const Analysis& a, const analyzer::Resources& res, Knobs knobs) {
  auto predict = [&](const Knobs& k) { return analyzer::Predict(a, k, res).outputs_per_s; };
  auto ordered_for = [&](size_t i, int workers) {
    return a.stages[i].ordered && !(m.stages[i].reorder && workers > 1);
  };
  // The share of the cores counts the CPU of the maps fused onto the stage's workers too.
  auto most = [&](size_t i, const Knobs& in) {
    const StageModel& sm = m.stages[i];
    if (sm.share_cap <= 0) return sm.cap;
    double cpu = sm.cpu;
    for (size_t j = i; j-- > 1;) {
      const analyzer::StageKnobs& k = in.stages[j];
      if (k.parallelism > 1 || k.buffer_size > 0 || !m.stages[j].fusible) break;
      cpu += m.stages[j].cpu;
    }
    const double share = std::ceil(m.cores * cpu / sm.share_cpu_total - 1e-9);
    return std::min(sm.cap, std::max(1, static_cast<int>(share)));
  };
  for (size_t i = 0; i < knobs.stages.size(); ++i) {
    analyzer::StageKnobs& k = knobs.stages[i];
    k.ordered = ordered_for(i, k.parallelism);
    if (k.ordered && k.parallelism > most(i, knobs)) {
      k.parallelism = std::max(1, most(i, knobs));
      if (k.parallelism == 1) k.buffer_size = std::max(k.buffer_size, 1);  // stays async
    }
  }
  double best = predict(knobs);
  for (int round = 0; round < 16; ++round) {
    std::optional<Knobs> fewer, more;
    double more_x = best * (1 + kPolishGain);
    for (size_t i = 0; i < knobs.stages.size() && !fewer; ++i) {
      // One fused group of workers rather than a chain of threads, where it needs fewer threads
      // for no less throughput, or gains.
      std::optional<Knobs> t = FoldIntoGroup(m, knobs, i, most);
      if (!t || Memory(m, *t) > m.memory_budget) continue;
      const double x = predict(*t);
      if ((Threads(*t) < Threads(knobs) && x >= best * (1 - 1e-3)) ||
          x > best * (1 + kPolishGain)) {
        fewer = t;
      }
    }
    for (size_t i = 0; i < knobs.stages.size(); ++i) {
      const analyzer::StageKnobs& k = knobs.stages[i];
      const bool async = k.parallelism > 1 || k.buffer_size > 0;
      if (!m.stages[i].parallelizable || !async) continue;
      for (int delta : {-1, +1}) {
        const int workers = k.parallelism + delta;
        if (workers < 1 || workers > m.stages[i].cap) continue;
        if (delta > 0 && ordered_for(i, workers) && workers > most(i, knobs)) continue;
        if (workers == 1 && k.buffer_size == 0) continue;  // would turn the stage inline
        // The program planned waiting workers half busy for load the prediction cannot see.
        if (delta < 0 && Waiting(m.stages[i].owner_wall, m.stages[i].cpu)) continue;
        Knobs t = knobs;
        t.stages[i].parallelism = workers;
        t.stages[i].ordered = ordered_for(i, workers);
        if (Memory(m, t) > m.memory_budget) continue;
        const double x = predict(t);
        if (delta < 0 && !fewer && x >= best * (1 - 1e-3)) fewer = t;
        if (delta > 0 && x > more_x) {
          more = t;
          more_x = x;
        }
      }
    }
    if (fewer) {
      knobs = *fewer;
    } else if (more) {
      knobs = *more;
    } else {
      break;
    }
    best = predict(knobs);
  }
  return knobs;
}

Plan TuneImpl(const Analysis& a, const trace::PipelineTrace& p, const TuneOptions& o,
              bool explore_cores) {
  Model m = BuildModel(a, p, o);
  const Solution sol = SolveProgram(m, a);
  const size_t n = a.stages.size();
  const std::string unit = Plural(a.output_noun) + "/s";
  const std::string per = " per " + a.output_noun;

  Plan plan;
  plan.pipeline = a.pipeline;
  plan.output_noun = a.output_noun;
  plan.cores = m.cores;
  plan.memory_budget_bytes = m.memory_budget;
  plan.milp_outputs_per_s = sol.x;
  plan.current_outputs_per_s = a.measured_outputs_per_s;

  analyzer::Resources res = analyzer::CurrentResources(a);
  res.cores = m.cores;
  const Knobs current = analyzer::CurrentKnobs(a);
  plan.current_predicted_outputs_per_s = analyzer::Predict(a, current, res).outputs_per_s;

  // The chosen knobs.
  Knobs knobs = current;
  for (size_t i = 0; i < n; ++i) {
    analyzer::StageKnobs& k = knobs.stages[i];
    if (!sol.async[i]) {
      k.parallelism = 1;
      k.buffer_size = 0;
      continue;
    }
    k.parallelism = std::max(1, sol.workers[i]);
    k.buffer_size = std::max(1, sol.buffer[i]);
    // A parallel stage already running without a queue keeps it that way when one slot is all
    // it would get: the runtime already treats it as async.
    if (current.stages[i].buffer_size == 0 && k.parallelism > 1 && k.buffer_size == 1) {
      k.buffer_size = 0;
    }
  }
  knobs.cache_after = sol.cache_after;
  // Where the config allows it, parallel workers emit in completion order (never slower).
  knobs = Polish(m, a, res, knobs);
  plan.threads = Threads(knobs);
  plan.memory_bytes = Memory(m, knobs);
  plan.knobs = knobs;
  plan.prediction = analyzer::Predict(a, knobs, res);
  plan.predicted_outputs_per_s = plan.prediction.outputs_per_s;
  const double planned = plan.predicted_outputs_per_s;
  plan.speedup = plan.current_predicted_outputs_per_s > 0
                     ? plan.predicted_outputs_per_s / plan.current_predicted_outputs_per_s
                     : 1.0;
  // The program plans each thread at most 90 % busy (50 % on waiting work), so the prediction may
  // exceed its X by up to 1/h; outside that band the two models disagree, and the plan says so.
  double headroom = kServerHeadroom;
  for (size_t i = 0; i < n; ++i) {
    if (sol.async[i]) headroom = std::min(headroom, Headroom(m.stages[i]));
  }
  if (sol.x > 0 && (plan.predicted_outputs_per_s < 0.95 * sol.x ||
                    plan.predicted_outputs_per_s > 1.05 * sol.x / headroom)) {
    plan.notes.push_back(fmt::format(
        "the program's throughput ({} {}, with every thread at most {}% busy) and the analyzer's "
        "prediction for the chosen knobs ({} {}) differ by {:.0f}%; the prediction is the one "
        "reported",
        Num(sol.x), unit, static_cast<int>(std::lround(100 * headroom)),
        Num(plan.predicted_outputs_per_s), unit,
        100 * std::abs(plan.predicted_outputs_per_s / sol.x - 1)));
  }

  // The changes, each with the throughput predicted once it and the earlier ones are made.
  Knobs applied = current;
  auto record = [&](Change change) {
    change.predicted_outputs_per_s = analyzer::Predict(a, applied, res).outputs_per_s;
    change.effect = fmt::format("predicted {} {} with this change and those above it (now {})",
                                Num(change.predicted_outputs_per_s), unit,
                                Num(plan.current_predicted_outputs_per_s));
    plan.changes.push_back(std::move(change));
  };
  for (size_t i = 0; i < n; ++i) {
    const StageAnalysis& s = a.stages[i];
    const analyzer::StageKnobs& from = current.stages[i];
    const analyzer::StageKnobs& to = knobs.stages[i];
    if (to.parallelism != from.parallelism) {
      applied.stages[i].parallelism = to.parallelism;
      const Group g = GroupOf(m, knobs, i);
      const double w = g.wall;
      const auto names = [&](const std::vector<size_t>& idx) {
        std::vector<std::string> v;
        for (size_t j : idx) v.push_back(a.stages[j].name);
        return Quoted(v);
      };
      std::string with;
      if (!g.fused.empty()) {
        with += fmt::format(", with {} fused onto its workers", names(g.fused));
      }
      if (!g.locked.empty()) {
        with += fmt::format("{} {} pulled under its input lock", g.fused.empty() ? ", with" : " and",
                            names(g.locked));
      }
      if (!with.empty()) with = " (" + with.substr(2) + ")";
      Change c{s.name, "parallelism", from.parallelism, to.parallelism, "", "", 0};
      c.why = fmt::format(
          "stage '{}' needs {} of wall time{}{}, so the planned {} {} keep {} of its {} worker{} "
          "busy ({}% each)",
          s.name, Duration(w), per, with, Num(planned), unit, Num(planned * w), to.parallelism,
          to.parallelism == 1 ? "" : "s",
          static_cast<int>(std::lround(100 * planned * w / to.parallelism)));
      record(c);
    }
    if (to.ordered != from.ordered) {
      applied.stages[i].ordered = to.ordered;
      Change c{s.name, kKnobDeterministic, from.ordered ? 1 : 0, to.ordered ? 1 : 0, "", "", 0};
      c.why = fmt::format(
          "stage '{}' allows reordering (\"allow_reorder\": true), so its {} workers emit each "
          "element as soon as it is done instead of waiting for the one ahead of it{}",
          s.name, to.parallelism,
          s.turn_wait_demand > 0 && from.parallelism > 1
              ? fmt::format(" (that wait took {}{} as traced)", Duration(s.turn_wait_demand), per)
              : "");
      record(c);
    }
    if (to.buffer_size != from.buffer_size) {
      applied.stages[i].buffer_size = to.buffer_size;
      Change c{s.name, "buffer_size", from.buffer_size, to.buffer_size, "", "", 0};
      const StageModel& sm = m.stages[i];
      const double lambda = s.visit_ratio * sol.x;
      std::string basis;
      if (m.input_bound && i + 1 == n) {
        basis = fmt::format(
            "the consumer waited in Next() {}% of the window, and a prefetch queue of {} lets the "
            "next {} be ready while it trains",
            static_cast<int>(std::lround(100 * a.input_bound.wait_fraction)), to.buffer_size,
            a.output_noun);
      } else if (sm.rate_cv > 0) {
        basis = fmt::format(
            "its output varies {}% between {} s samples, and {} elements cover a dip of two "
            "standard deviations at the planned {} elements/s",
            static_cast<int>(std::lround(100 * sm.rate_cv)), Num(o.sample_interval), to.buffer_size,
            Num(lambda));
      } else {
        basis = fmt::format(
            "a queue of {} lets it run on its own thread, overlapping with the "
            "stages downstream",
            to.buffer_size);
      }
      if (to.buffer_size < sm.buffer_target && to.buffer_size > 0) {
        basis += fmt::format(" (the memory budget of {} leaves room for {} of the {} wanted)",
                             Bytes(m.memory_budget), to.buffer_size, sm.buffer_target);
      }
      if (to.buffer_size == 0) {
        basis = fmt::format(
            "the stage runs inline: at the planned {} {} it needs no thread of "
            "its own",
            Num(sol.x), unit);
      }
      c.why =
          fmt::format("stage '{}' gets an output queue of {}: {}", s.name, to.buffer_size, basis);
      if (to.buffer_size == 0) c.why = fmt::format("stage '{}': {}", s.name, basis);
      record(c);
    }
  }
  double total_wall = 0;
  for (const StageAnalysis& s : a.stages) total_wall += s.wall_demand;
  for (size_t i = 0; i < n; ++i) {
    const StageAnalysis& s = a.stages[i];
    if (m.stages[i].too_fast && s.parallelizable && !m.stages[i].fixed_async &&
        s.wall_demand >= 0.1 * total_wall) {
      plan.notes.push_back(fmt::format(
          "stage '{}' takes {} per element, less than handing an element to another thread "
          "costs, so it stays inline: workers would slow it down",
          s.name, Duration(s.visit_ratio > 0 ? s.wall_demand / s.visit_ratio : 0)));
    }
  }
  if (sol.cache_after) {
    const size_t k = *sol.cache_after;
    const StageModel& sm = m.stages[k];
    double saved = 0;
    for (size_t i = 0; i <= k; ++i) saved += m.stages[i].cpu;
    applied.cache_after = k;
    Change c{a.stages[k].name, kKnobCache, 0, 1, "", "", 0};
    c.why = fmt::format(
        "every stage up to '{}' is deterministic and one epoch of its output ({} elements of {}, "
        "{}) fits the memory budget of {}, so with {} a cache after it saves {} of CPU{} from the "
        "second epoch on",
        a.stages[k].name, Num(sm.cache_elements), Bytes(sm.bytes), Bytes(sm.cache_bytes),
        Bytes(m.memory_budget),
        o.epochs < 0 ? "endless epochs" : fmt::format("{} epochs", o.epochs), Duration(saved), per);
    record(c);
    plan.notes.push_back(fmt::format(
        "the first epoch fills the cache after '{}' at today's pace; the predicted {} {} hold "
        "from the second epoch on",
        a.stages[k].name, Num(plan.predicted_outputs_per_s), unit));
  } else if (o.epochs == 0 || o.epochs == 1) {
    plan.notes.push_back(o.epochs == 1 ? "no cache: the job reads its data once (epochs 1)"
                                       : "no cache: the number of epochs is unknown");
  } else if (p.epochs_completed < 1) {
    plan.notes.push_back(
        "no cache: no epoch completed in the trace, so the size of one epoch's data is unknown");
  }
  for (const std::string& note : plan.prediction.notes) plan.notes.push_back(note);

  // The consumer's pace: when the CPU holds the tuned pipeline below it, what more cores buy.
  // A consumer ten times faster than the tuned pipeline only drains it (a benchmark, a dry run):
  // the cores that would saturate it are no advice.
  const bool drain = a.consumer_outputs_per_s > 10 * plan.predicted_outputs_per_s;
  if (explore_cores && drain) {
    plan.notes.push_back(fmt::format(
        "the consumer takes {} {}, far more than the pipeline can make: the pipeline alone sets "
        "the pace",
        Num(a.consumer_outputs_per_s), unit));
  }
  if (explore_cores && !drain && a.consumer_outputs_per_s > 0 &&
      plan.predicted_outputs_per_s < 0.99 * a.consumer_outputs_per_s &&
      std::any_of(plan.prediction.limits.begin(), plan.prediction.limits.end(),
                  [&](const analyzer::Limit& l) {
                    return l.kind == LimitKind::kCpu &&
                           l.outputs_per_s <= plan.predicted_outputs_per_s * (1 + 1e-3);
                  })) {
    double cpu = a.other_cpu_demand;
    for (size_t i = 0; i < n; ++i) {
      if (!knobs.cache_after || i > *knobs.cache_after) cpu += a.stages[i].cpu_demand;
    }
    const double needed = a.consumer_outputs_per_s * cpu;
    plan.cores_needed_for_consumer = needed;
    TuneOptions more = o;
    more.cores = std::ceil(needed);
    try {
      const Plan bigger = TuneImpl(a, p, more, false);
      plan.outputs_per_s_with_cores_needed = bigger.predicted_outputs_per_s;
      plan.notes.push_back(fmt::format(
          "the consumer could take {} {}, but the CPU holds the pipeline to {}: it needs {} cores "
          "({} more than the {} planned for); with {} cores the tuner predicts {} {} ({} "
          "threads){}",
          Num(a.consumer_outputs_per_s), unit, Num(plan.predicted_outputs_per_s), Num(needed),
          Num(needed - m.cores), Num(m.cores), Num(*more.cores),
          Num(bigger.predicted_outputs_per_s), unit, bigger.threads,
          bigger.prediction.limits.empty()
              ? std::string()
              : ", then limited because " + bigger.prediction.limits.front().why));
    } catch (const Error&) {
      // The larger machine is only advice; a plan without it stands.
    }
  }
  return plan;
}

}  // namespace

Plan Tune(const Analysis& analysis, const trace::PipelineTrace& pipeline,
          const TuneOptions& options) {
  return TuneImpl(analysis, pipeline, options, true);
}

}  // namespace sluice::tuner
