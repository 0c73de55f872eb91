// `sluice profile`: traces a job (a command, or a pipeline config run in-process) for a while and
// writes DIR/trace.json (then DIR/tuned.json and DIR/report.html).
//
//   sluice profile [--seconds N] [--out DIR] [--keep-running] -- CMD ARGS...   (N 0: whole job)
//   sluice profile CONFIG [--seconds N] [--consumer-ms X] [--out DIR]
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/autotune/autotune.h"
#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/common/files.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/chunked.h"
#include "sluice/trace/io.h"
#include "sluice/tracer/tracer.h"
#include "sluice/tuner/tuner.h"
#include "tools/sluice/child_job.h"
#include "tools/sluice/commands.h"
#include "tools/sluice/consume.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
using ::sluice::Num;

constexpr int kMaxTrials = 10;

struct ProfileOptions {
  std::vector<std::string> args;  // CONFIG, or CMD ARGS...
  double seconds = 10;
  double consumer_ms = 0;
  double interval_ms = 100;
  std::string out = "sluice-profile";
  bool keep_running = false;
  bool chrome = false;
  bool autotune = false;         // CMD mode: the job tunes itself online (SLUICE_AUTOTUNE)
  double autotune_interval = 2;  // seconds between its decisions
  double cores = 0;              // with --autotune: the tuner's CPU budget; 0: the host's
  std::string memory;            // with --autotune: its memory budget
  int trials = 2;                // CONFIG mode: tuned candidates to run and measure
  double trial_seconds = 0;      // each; 0: half of `seconds`
};

bool IsConfigMode(const ProfileOptions& opt) {
  return opt.args.size() == 1 && fs::path(opt.args[0]).extension() == ".json" &&
         fs::is_regular_file(opt.args[0]);
}

// What the user reads after profiling: where the trace is and what it says at a glance.
void PrintSummary(const trace::Trace& t, const fs::path& path) {
  fmt::print("trace: {}  ({:.1f} s, {} samples every {:.0f} ms; {})\n", path.string(),
             t.job.duration, t.tracer.samples, t.tracer.interval * 1000, t.job.end_reason);
  for (const auto& p : t.pipelines) {
    double secs = t.job.duration - p.first_sample;
    fmt::print("pipeline '{}': {} outputs, {:.1f} outputs/s; consumer waited {:.0f}% of the time\n",
               p.name, p.consumer.next_calls, secs > 0 ? p.consumer.next_calls / secs : 0.0,
               secs > 0 ? 100 * p.consumer.wait_seconds / secs : 0.0);
    fmt::print("  {:<16} {:<20} {:>10} {:>9} {:>8} {:>8}\n", "stage", "op", "out", "out/s", "cpu s",
               "busy s");
    for (const auto& s : p.stages) {
      fmt::print("  {:<16} {:<20} {:>10} {:>9.1f} {:>8.2f} {:>8.2f}\n", s.name.substr(0, 16),
                 s.op.substr(0, 20), s.elements_out, secs > 0 ? s.elements_out / secs : 0.0,
                 s.cpu_seconds, s.busy_seconds);
    }
  }
  for (const auto& d : t.host.disks) {
    fmt::print("disk {}: {:.0f} MB/s read ({}{})\n", d.device, d.read_mb_per_s, d.method,
               d.cached ? ", remembered" : "");
  }
  fmt::print("gpu: {}{}\n", t.gpu.status,
             t.gpu.status == "ok"
                 ? fmt::format(" ({}, busy {:.0f}%)", t.gpu.device_name, 100 * t.gpu.busy_fraction)
                 : fmt::format(" ({})", t.gpu.reason));
  fmt::print("tracer overhead: {:.3f} CPU s ({:.2f}% of the job's CPU)\n", t.tracer.cpu_seconds,
             100 * t.tracer.overhead_fraction);
}

// Traces one run of `doc` for `seconds` into `trace_path` (printing its summary when `summary`);
// returns how the run ended.
ConsumeResult TraceRun(const config::Document& doc, const fs::path& trace_path,
                       const ProfileOptions& opt, double seconds, bool summary) {
  fs::create_directories(trace_path.parent_path());
  tracer::TracerOptions topt;
  topt.trace_path = trace_path;
  if (opt.chrome) topt.chrome_path = trace_path.parent_path() / "trace.chrome.json";
  topt.interval = opt.interval_ms / 1000.0;
  auto pipe = pipeline::Pipeline::Create(doc, {.epochs = -1});
  tracer::Tracer tracer(topt);
  ConsumeResult r = Consume(*pipe, seconds, opt.consumer_ms, ::isatty(STDERR_FILENO));
  pipe->Stop();
  pipe.reset();  // the tracer records its final counters
  tracer.Stop(r.interrupted ? "signal SIGINT" : r.ended ? "completed" : "window elapsed");
  if (summary) PrintSummary(tracer.Current(), trace_path);
  return r;
}

// An earlier profile's trials in `out` would be taken for this one's (the report reads them).
void RemoveEarlierTrials(const fs::path& out) {
  std::error_code ignored;
  fs::remove(out / "trials.json", ignored);
  for (int round = 1; round <= kMaxTrials; ++round) {
    fs::remove_all(out / fmt::format("trial-{}", round), ignored);
  }
}

// A plan is tried only when it promises more than this gain.
constexpr double kTrialGain = 0.05;
// Two short runs of the same config differ by up to about this much.
constexpr double kTrialNoise = 0.025;

// The knobs a plan changes, in a few words: "heavy.parallelism 1->2, prefetch.buffer_size 1->4".
std::string ChangeList(const tuner::Plan& plan) {
  std::string out;
  for (const tuner::Change& c : plan.changes) {
    out += fmt::format("{}{}.{} {}->{}", out.empty() ? "" : ", ", c.stage, c.knob, c.from, c.to);
  }
  return out.empty() ? "no change" : out;
}

// The config kept so far in CONFIG mode, and what is known of its rate.
struct Kept {
  const config::Document* config = nullptr;  // the config as given, or `tuned`
  std::optional<config::Document> tuned;
  double measured = 0;  // outputs/s measured for it
  double model = 0;     // the model's figure for it
  bool was_run = true;  // false for a plan kept on the model's word
  int round = 0;
};

// Where a trial round's files go.
struct Trials {
  const ProfileOptions& opt;
  fs::path out;
  double seconds = 0;  // per trial
  std::string unit;    // "batches/s"
};

// Round `round`'s plan adds a cache, which a short trial would spend filling and so judge
// unfairly: the plan is kept on the model's word.
void KeepUntried(int round, const TraceTuning& tuning, const Trials& trials, Kept& kept,
                 nlohmann::json& rounds) {
  const tuner::Plan& plan = tuning.plan;
  fmt::print(
      "round {}: not tried: the plan adds a cache, which a {} s trial would spend "
      "filling; kept on the model's word\n",
      round, Num(trials.seconds));
  kept.tuned = tuning.tuned;
  kept.config = &*kept.tuned;
  kept.round = round;
  kept.model = plan.predicted_outputs_per_s;
  kept.was_run = false;
  rounds.push_back({{"round", round},
                    {"tried", false},
                    {"changes", ChangeList(plan)},
                    {"predicted_outputs_per_s", kept.model},
                    {"kept", true}});
}

// Runs round `round`: the candidate `tuning.tuned` traced for a trial (DIR/trial-N/), then tuned
// again from the trial's trace into `tuning`. Keeps the candidate in `kept` when it measured
// faster. Returns false when the rounds end here.
bool TryRound(int round, TraceTuning& tuning, const Trials& trials, Kept& kept,
              nlohmann::json& rounds) {
  const tuner::Plan& plan = tuning.plan;
  const fs::path dir = trials.out / fmt::format("trial-{}", round);
  const double predicted = plan.predicted_outputs_per_s;
  ConsumeResult r;
  std::optional<TraceTuning> tried;
  try {
    fs::create_directories(dir);
    tuning.tuned.Save(dir / "pipeline.json");
    r = TraceRun(tuning.tuned, dir / "trace.json", trials.opt, trials.seconds, false);
    tried = TuneTrace((dir / "trace.json").string(), &tuning.tuned);
  } catch (const std::exception& e) {
    // A candidate that cannot run or be analyzed is not kept; what was measured stands.
    fmt::print(stderr, "sluice: warning: round {}: the trial failed: {}\n", round, e.what());
    rounds.push_back({{"round", round},
                      {"tried", true},
                      {"changes", ChangeList(plan)},
                      {"error", e.what()},
                      {"kept", false}});
    return false;
  }
  TraceTuning next = std::move(*tried);
  const double measured = next.analysis.measured_outputs_per_s;
  // Any gain over the config as given counts; replacing an earlier candidate takes a gain
  // above run-to-run noise.
  const bool better = measured > kept.measured * (kept.round == 0 ? 1 : 1 + kTrialNoise);
  rounds.push_back({{"round", round},
                    {"tried", true},
                    {"trace", (dir / "trace.json").string()},
                    {"config", (dir / "pipeline.json").string()},
                    {"changes", ChangeList(plan)},
                    {"predicted_outputs_per_s", predicted},
                    {"measured_outputs_per_s", measured},
                    {"model_outputs_per_s", next.plan.current_predicted_outputs_per_s},
                    {"kept", better},
                    {"proposes", ChangeList(next.plan)},
                    {"proposed_speedup", next.plan.speedup}});
  fmt::print(
      "round {} (trial of {} s): {}: predicted {}, measured {} {} ({}); next the tuner "
      "proposes {} ({}x predicted)\n",
      round, Num(trials.seconds), ChangeList(plan), Num(predicted), Num(measured), trials.unit,
      better ? "kept" : "not better than round " + std::to_string(kept.round),
      ChangeList(next.plan), Num(next.plan.speedup));
  if (better) {
    kept.tuned = tuning.tuned;
    kept.config = &*kept.tuned;
    kept.measured = measured;
    kept.model = next.plan.current_predicted_outputs_per_s;
    kept.round = round;
  }
  tuning = std::move(next);
  return !r.interrupted && better;
}

// Saves the kept config to `tuned_path`, writes DIR/trials.json and says what was kept.
void WriteKept(const Kept& kept, const nlohmann::json& rounds, const Trials& trials,
               const fs::path& tuned_path) {
  kept.config->Save(tuned_path, fs::path(tuned_path.string() + ".bak"));
  // What sluice expects of the kept config: its measured rate where it ran, else the model's.
  const double expected = kept.was_run ? kept.measured : kept.model;
  nlohmann::json summary = {{"rounds", rounds},
                            {"kept_round", kept.round},
                            {"measured_outputs_per_s", kept.was_run ? nlohmann::json(kept.measured)
                                                                    : nlohmann::json(nullptr)},
                            {"model_outputs_per_s", kept.model},
                            {"expected_outputs_per_s", expected}};
  WriteFileAtomically(trials.out / "trials.json", summary.dump(2) + "\n", "the trials");
  const double now = rounds[0]["measured_outputs_per_s"].get<double>();
  const std::string& unit = trials.unit;
  if (kept.round == 0) {
    fmt::print("tuned: kept your config: no tuned candidate measured faster ({} {})\n",
               Num(kept.measured), unit);
  } else if (!kept.was_run) {
    fmt::print("tuned: round {}'s plan, {} {} predicted ({} now, {}x), not tried\n", kept.round,
               Num(expected), unit, Num(now), Num(now > 0 ? expected / now : 1.0));
  } else {
    fmt::print(
        "tuned: round {}'s config, {} {} measured in its trial (the model says {} at its knobs; "
        "{} now, {}x)\n",
        kept.round, Num(kept.measured), unit, Num(kept.model), Num(now),
        Num(now > 0 ? kept.measured / now : 1.0));
  }
  fmt::print("wrote {} (rounds in {}): apply it with `sluice apply {}`\n", tuned_path.string(),
             (trials.out / "trials.json").string(), tuned_path.string());
}

// Tunes the traced config, then runs and measures the tuned candidates round by round (at most
// --trials) and keeps the fastest measured.
void TuneWithTrials(const config::Document& doc, const fs::path& trace_path, Trials& trials,
                    const fs::path& tuned_path) {
  nlohmann::json rounds = nlohmann::json::array();
  TraceTuning tuning = TuneTrace(trace_path.string(), &doc);
  trials.unit = tuning.plan.output_noun == "batch" ? "batches/s" : "outputs/s";
  fmt::print("bottleneck: {}\n",
             tuning.analysis.limits.empty() ? "none found" : tuning.analysis.Bottleneck().why);
  // The best measured so far: the config as given, to begin with.
  Kept kept;
  kept.config = &doc;
  kept.measured = tuning.analysis.measured_outputs_per_s;
  kept.model = tuning.plan.current_predicted_outputs_per_s;  // the model's figure for it
  rounds.push_back({{"round", 0},
                    {"trace", trace_path.string()},
                    {"measured_outputs_per_s", kept.measured},
                    {"model_outputs_per_s", kept.model},
                    {"proposes", ChangeList(tuning.plan)},
                    {"proposed_speedup", tuning.plan.speedup}});
  fmt::print("round 0 (your config): {} {} measured; the tuner proposes {} ({}x predicted)\n",
             Num(kept.measured), trials.unit, ChangeList(tuning.plan), Num(tuning.plan.speedup));
  for (int round = 1; round <= trials.opt.trials; ++round) {
    const tuner::Plan& plan = tuning.plan;
    if (plan.changes.empty() || plan.speedup < 1 + kTrialGain) break;
    if (plan.knobs.cache_after) {
      KeepUntried(round, tuning, trials, kept, rounds);
      break;
    }
    if (!TryRound(round, tuning, trials, kept, rounds)) break;
  }
  WriteKept(kept, rounds, trials, tuned_path);
}

// CONFIG mode: trace the config, tune it, then verify: run each tuned candidate traced for a
// trial (DIR/trial-N/), tune again from the trial's trace, and keep the config that measured
// fastest. Writes DIR/trials.json with every round; DIR/tuned.json is the kept config.
int ProfileConfig(const ProfileOptions& opt) {
  const config::Document doc = config::Document::Load(opt.args[0]);
  for (const std::string& w : doc.warnings()) fmt::print(stderr, "sluice: warning: {}\n", w);
  const fs::path out(opt.out);
  fs::create_directories(out);
  RemoveEarlierTrials(out);
  const fs::path trace_path = out / "trace.json";
  const ConsumeResult first = TraceRun(doc, trace_path, opt, opt.seconds, true);
  const fs::path tuned_path = out / "tuned.json";
  Trials trials{opt, out, opt.trial_seconds > 0 ? opt.trial_seconds : opt.seconds / 2, ""};
  if (opt.trials == 0 || first.interrupted) {
    TuneAfterProfile(trace_path.string(), tuned_path.string());
    ReportAfterProfile(trace_path.string(), (out / "report.html").string());
    return 0;
  }
  try {
    TuneWithTrials(doc, trace_path, trials, tuned_path);
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice: no tuned config: {}\n", e.what());
  }
  ReportAfterProfile(trace_path.string(), (out / "report.html").string());
  return 0;
}

// After `sluice profile --autotune -- CMD`: what the job's own tuner did, and its last knobs
// written as tuned.json.
void SummarizeRetunes(const trace::Trace& t, const fs::path& tuned_path) {
  for (const trace::PipelineTrace& p : t.pipelines) {
    if (p.retunes.empty()) continue;
    fmt::print("pipeline '{}': {} re-tune{} while it ran (see the report)\n", p.name,
               p.retunes.size(), p.retunes.size() == 1 ? "" : "s");
    for (const trace::Retune& r : p.retunes) {
      std::string knobs;
      for (const trace::RetuneChange& c : r.changes) {
        knobs += fmt::format("{}{}", knobs.empty() ? "" : ", ", trace::ChangeText(c));
      }
      fmt::print("  {:6.1f} s {} {}{}\n", r.t, r.action, knobs,
                 r.action == "apply" && !r.kept ? " (rolled back)" : "");
    }
  }
  try {
    if (autotune::WriteLastConfig(t, "", tuned_path)) {
      fmt::print("wrote {} (the knobs the job last ran with): apply it with `sluice apply {}`\n",
                 tuned_path.string(), tuned_path.string());
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice: no tuned config: {}\n", e.what());
  }
}

// How the job ended goes into the trace, for the report and for scripts; a job that died before
// its tracer could finish is marked cut short. Returns true for such a job.
bool RecordJobEnd(const ChildJob& job, trace::Trace& t) {
  const int status = job.status;
  if (WIFEXITED(status)) t.job.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    const char* abbrev = sigabbrev_np(WTERMSIG(status));
    t.job.exit_signal = abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("{}", WTERMSIG(status));
  }
  const bool we_stopped = job.stop_sent && WIFSIGNALED(status) &&
                          (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL);
  if (we_stopped || !job.done_reason.empty()) return false;
  // The job died before its tracer could finish: keep what was flushed, and say so.
  t.job.cut_short = true;
  t.job.end_reason = fmt::format("job {}", DescribeStatus(status));
  return true;
}

// Fails saying why the job left no trace at `trace_path`.
[[noreturn]] void FailNoTrace(const ProfileOptions& opt, const ChildJob& job,
                              const fs::path& trace_path) {
  const std::string ended = job.exited ? DescribeStatus(job.status) : "is still running";
  if (job.tracer_heard) {
    Fail("the job's tracer ran but could not write {} (its message is above); the job {}",
         trace_path.string(), ended);
  }
  Fail(
      "no sluice pipeline was traced: '{}' {} before creating one (after {:.1f} s). sluice "
      "traces jobs whose input pipeline is built with sluice::pipeline::Pipeline::Create from "
      "libsluice_pipeline; check that the command reaches its data loading, or profile the "
      "pipeline config directly: sluice profile CONFIG",
      opt.args[0], ended, (MonotonicNanos() - job.start_ns) * 1e-9);
}

int ProfileCommand(const ProfileOptions& opt) {
  if (opt.args.empty()) Fail("profile needs a command after --, or a pipeline config");
  const fs::path out(opt.out);
  fs::create_directories(out);
  const fs::path trace_path = out / "trace.json";
  fs::remove(trace_path);
  RemoveEarlierTrials(out);
  ChildJobOptions child;
  child.args = opt.args;
  child.env = {{"SLUICE_TRACE", fs::absolute(trace_path).string()},
               {"SLUICE_TRACE_SECONDS", fmt::format("{}", opt.seconds)},
               {"SLUICE_TRACE_INTERVAL_MS", fmt::format("{}", opt.interval_ms)}};
  if (opt.autotune) {
    // The job tunes itself while traced; its tuned.json (the last knobs) lands beside the trace.
    child.env.emplace_back("SLUICE_AUTOTUNE", "1");
    child.env.emplace_back("SLUICE_AUTOTUNE_INTERVAL", fmt::format("{}", opt.autotune_interval));
    if (opt.cores > 0)
      child.env.emplace_back("SLUICE_AUTOTUNE_CORES", fmt::format("{}", opt.cores));
    if (!opt.memory.empty()) {
      tuner::ParseMemorySize(opt.memory);  // a bad size fails here, naming itself
      child.env.emplace_back("SLUICE_AUTOTUNE_MEMORY", opt.memory);
    }
  }
  if (opt.chrome) {
    child.env.emplace_back("SLUICE_TRACE_CHROME", fs::absolute(out / "trace.chrome.json").string());
  }
  child.seconds = opt.seconds;
  child.keep_running = opt.keep_running;
  child.show_progress = ::isatty(STDERR_FILENO);
  const ChildJob job = RunChildJob(child);

  if (!fs::exists(trace_path)) FailNoTrace(opt, job, trace_path);
  trace::Trace t = trace::ReadTrace(trace_path);
  int rc = 0;
  const bool cut_short = job.exited && RecordJobEnd(job, t);
  if (job.exited) {
    // A chunked trace keeps everything flushed: its end is appended, not the file rewritten.
    if (t.format == trace::kFormatV2) {
      trace::AppendTraceState(t, trace_path);
    } else {
      trace::WriteTrace(t, trace_path);
    }
  }
  if (cut_short) {
    fmt::print(stderr,
               "sluice: the job {} after {:.1f} s; the trace up to its last flush is kept\n",
               DescribeStatus(job.status), t.job.duration);
    rc = 1;
  } else if (job.exited && WIFEXITED(job.status) && WEXITSTATUS(job.status) != 0) {
    fmt::print(stderr, "sluice: the job {}\n", DescribeStatus(job.status));
  }
  PrintSummary(t, trace_path);
  if (rc == 0 && opt.autotune) {
    SummarizeRetunes(t, out / "tuned.json");
  } else if (rc == 0) {
    TuneAfterProfile(trace_path.string(), (out / "tuned.json").string());
  }
  // The report is written even for a job that died: its banner says how.
  ReportAfterProfile(trace_path.string(), (out / "report.html").string());
  return rc;
}

}  // namespace

Action AddProfileCommand(CLI::App& app) {
  auto opt = std::make_shared<ProfileOptions>();
  CLI::App* sub = app.add_subcommand(
      "profile", "Trace a job (-- CMD ARGS...) or a pipeline config and write DIR/trace.json");
  sub->add_option("args", opt->args, "CONFIG, or -- CMD ARGS... of a job linked with sluice");
  sub->add_option("--seconds", opt->seconds,
                  "Seconds to trace (default 10); -- CMD mode: 0 traces the whole job until it "
                  "exits")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--out", opt->out, "Output directory (default sluice-profile)");
  sub->add_option("--consumer-ms", opt->consumer_ms,
                  "CONFIG mode: simulated training step per output, in milliseconds")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--interval-ms", opt->interval_ms, "Sampling interval (default 100)")
      ->check(CLI::Range(1.0, 10000.0));
  sub->add_flag("--keep-running", opt->keep_running,
                "Leave the job running after the tracing window (default: stop it)");
  sub->add_option("--trials", opt->trials,
                  "CONFIG mode: tuned configs to run and measure before keeping one (default 2; "
                  "0: trust the model)")
      ->check(CLI::Range(0, kMaxTrials));
  sub->add_option("--trial-seconds", opt->trial_seconds,
                  "CONFIG mode: seconds per trial (default: half of --seconds)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--chrome", opt->chrome, "Also write DIR/trace.chrome.json for Perfetto");
  sub->add_flag("--autotune", opt->autotune,
                "-- CMD mode: the job re-tunes its pipeline while it runs (SLUICE_AUTOTUNE=1); "
                "the trace records every re-tune");
  sub->add_option("--autotune-interval", opt->autotune_interval,
                  "With --autotune: seconds between decisions (default 2)")
      ->check(CLI::Range(0.2, 600.0));
  sub->add_option("--cores", opt->cores, "With --autotune: the CPU budget (default: the host's)")
      ->check(CLI::PositiveNumber)
      ->needs("--autotune");
  sub->add_option("--memory", opt->memory,
                  "With --autotune: the memory budget for queues and in-flight elements, 512M, 4G "
                  "or bytes (default: half the available memory)")
      ->needs("--autotune");
  return [opt] {
    if (!IsConfigMode(*opt)) return ProfileCommand(*opt);
    // A pipeline config run in-process repeats its data forever: it needs a window.
    if (opt->seconds <= 0) {
      fmt::print(stderr, "sluice: profile: --seconds 0 (the whole job) is for -- CMD only\n");
      return 2;
    }
    return ProfileConfig(*opt);
  };
}

}  // namespace sluice::cli
