// `sluice profile`: traces a job (a command, or a pipeline config run in-process) for a while and
// writes DIR/trace.json (then DIR/tuned.json and DIR/report.html).
//
//   sluice profile [--seconds N] [--out DIR] [--keep-running] -- CMD ARGS...
//   sluice profile CONFIG [--seconds N] [--consumer-ms X] [--out DIR]
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/common/figures.h"
#include "sluice/common/files.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/trace/io.h"
#include "sluice/tracer/tracer.h"
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
  int trials = 2;            // CONFIG mode: tuned candidates to run and measure
  double trial_seconds = 0;  // each; 0: half of `seconds`
};

bool IsConfigMode(const ProfileOptions& opt) {
  return opt.args.size() == 1 && fs::path(opt.args[0]).extension() == ".json" &&
         fs::is_regular_file(opt.args[0]);
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return fmt::format("was killed by SIG{} ({})", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                       strsignal(sig));
  }
  return fmt::format("ended with status {}", status);
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
  const double trial_seconds = opt.trial_seconds > 0 ? opt.trial_seconds : opt.seconds / 2;
  if (opt.trials == 0 || first.interrupted) {
    TuneAfterProfile(trace_path.string(), tuned_path.string());
    ReportAfterProfile(trace_path.string(), (out / "report.html").string());
    return 0;
  }
  nlohmann::json rounds = nlohmann::json::array();
  try {
    TraceTuning tuning = TuneTrace(trace_path.string(), &doc);
    const std::string unit = tuning.plan.output_noun == "batch" ? "batches/s" : "outputs/s";
    fmt::print("bottleneck: {}\n",
               tuning.analysis.limits.empty() ? "none found" : tuning.analysis.Bottleneck().why);
    // The best measured so far: the config as given, to begin with.
    const config::Document* best = &doc;
    std::optional<config::Document> best_tuned;
    double best_measured = tuning.analysis.measured_outputs_per_s;
    double best_model = tuning.plan.current_predicted_outputs_per_s;  // the model's figure for it
    bool best_was_run = true;  // false for a plan kept on the model's word
    int best_round = 0;
    rounds.push_back({{"round", 0},
                      {"trace", trace_path.string()},
                      {"measured_outputs_per_s", best_measured},
                      {"model_outputs_per_s", best_model},
                      {"proposes", ChangeList(tuning.plan)},
                      {"proposed_speedup", tuning.plan.speedup}});
    fmt::print("round 0 (your config): {} {} measured; the tuner proposes {} ({}x predicted)\n",
               Num(best_measured), unit, ChangeList(tuning.plan), Num(tuning.plan.speedup));
    for (int round = 1; round <= opt.trials; ++round) {
      const tuner::Plan& plan = tuning.plan;
      if (plan.changes.empty() || plan.speedup < 1 + kTrialGain) break;
      if (plan.knobs.cache_after) {
        // A short trial spends its time filling the cache; it would judge the cache unfairly.
        fmt::print(
            "round {}: not tried: the plan adds a cache, which a {} s trial would spend "
            "filling; kept on the model's word\n",
            round, Num(trial_seconds));
        best_tuned = tuning.tuned;
        best = &*best_tuned;
        best_round = round;
        best_model = plan.predicted_outputs_per_s;
        best_was_run = false;
        rounds.push_back({{"round", round},
                          {"tried", false},
                          {"changes", ChangeList(plan)},
                          {"predicted_outputs_per_s", best_model},
                          {"kept", true}});
        break;
      }
      const fs::path dir = out / fmt::format("trial-{}", round);
      const double predicted = plan.predicted_outputs_per_s;
      ConsumeResult r;
      std::optional<TraceTuning> tried;
      try {
        fs::create_directories(dir);
        tuning.tuned.Save(dir / "pipeline.json");
        r = TraceRun(tuning.tuned, dir / "trace.json", opt, trial_seconds, false);
        tried = TuneTrace((dir / "trace.json").string(), &tuning.tuned);
      } catch (const std::exception& e) {
        // A candidate that cannot run or be analyzed is not kept; what was measured stands.
        fmt::print(stderr, "sluice: warning: round {}: the trial failed: {}\n", round, e.what());
        rounds.push_back({{"round", round},
                          {"tried", true},
                          {"changes", ChangeList(plan)},
                          {"error", e.what()},
                          {"kept", false}});
        break;
      }
      TraceTuning next = std::move(*tried);
      const double measured = next.analysis.measured_outputs_per_s;
      // Any gain over the config as given counts; replacing an earlier candidate takes a gain
      // above run-to-run noise.
      const bool better = measured > best_measured * (best_round == 0 ? 1 : 1 + kTrialNoise);
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
          round, Num(trial_seconds), ChangeList(plan), Num(predicted), Num(measured), unit,
          better ? "kept" : "not better than round " + std::to_string(best_round),
          ChangeList(next.plan), Num(next.plan.speedup));
      if (better) {
        best_tuned = tuning.tuned;
        best = &*best_tuned;
        best_measured = measured;
        best_model = next.plan.current_predicted_outputs_per_s;
        best_round = round;
      }
      tuning = std::move(next);
      if (r.interrupted || !better) break;
    }
    best->Save(tuned_path, fs::path(tuned_path.string() + ".bak"));
    // What sluice expects of the kept config: its measured rate where it ran, else the model's.
    const double expected = best_was_run ? best_measured : best_model;
    nlohmann::json summary = {
        {"rounds", rounds},
        {"kept_round", best_round},
        {"measured_outputs_per_s",
         best_was_run ? nlohmann::json(best_measured) : nlohmann::json(nullptr)},
        {"model_outputs_per_s", best_model},
        {"expected_outputs_per_s", expected}};
    WriteFileAtomically(out / "trials.json", summary.dump(2) + "\n", "the trials");
    const double now = rounds[0]["measured_outputs_per_s"].get<double>();
    if (best_round == 0) {
      fmt::print("tuned: kept your config: no tuned candidate measured faster ({} {})\n",
                 Num(best_measured), unit);
    } else if (!best_was_run) {
      fmt::print("tuned: round {}'s plan, {} {} predicted ({} now, {}x), not tried\n", best_round,
                 Num(expected), unit, Num(now), Num(now > 0 ? expected / now : 1.0));
    } else {
      fmt::print(
          "tuned: round {}'s config, {} {} measured in its trial (the model says {} at its knobs; "
          "{} now, {}x)\n",
          best_round, Num(best_measured), unit, Num(best_model), Num(now),
          Num(now > 0 ? best_measured / now : 1.0));
    }
    fmt::print("wrote {} (rounds in {}): apply it with `sluice apply {}`\n", tuned_path.string(),
               (out / "trials.json").string(), tuned_path.string());
  } catch (const std::exception& e) {
    fmt::print(stderr, "sluice: no tuned config: {}\n", e.what());
  }
  ReportAfterProfile(trace_path.string(), (out / "report.html").string());
  return 0;
}

int ProfileCommand(const ProfileOptions& opt) {
  if (opt.args.empty()) Fail("profile needs a command after --, or a pipeline config");
  const fs::path out(opt.out);
  fs::create_directories(out);
  const fs::path trace_path = out / "trace.json";
  fs::remove(trace_path);
  RemoveEarlierTrials(out);
  int progress[2];
  int exec_error[2];
  if (::pipe2(progress, O_CLOEXEC) != 0 || ::pipe2(exec_error, O_CLOEXEC) != 0) {
    Fail("pipe: {}", std::strerror(errno));
  }
  const pid_t child = ::fork();
  if (child < 0) Fail("fork: {}", std::strerror(errno));
  if (child == 0) {
    // The progress pipe's write end must survive exec; everything else is close-on-exec.
    int fd = ::dup(progress[1]);
    ::setenv("SLUICE_TRACE", fs::absolute(trace_path).c_str(), 1);
    ::setenv("SLUICE_TRACE_SECONDS", fmt::format("{}", opt.seconds).c_str(), 1);
    ::setenv("SLUICE_TRACE_INTERVAL_MS", fmt::format("{}", opt.interval_ms).c_str(), 1);
    ::setenv("SLUICE_TRACE_PROGRESS_FD", fmt::format("{}", fd).c_str(), 1);
    if (opt.chrome) {
      ::setenv("SLUICE_TRACE_CHROME", fs::absolute(out / "trace.chrome.json").c_str(), 1);
    }
    std::vector<char*> argv;
    for (const std::string& a : opt.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int err = errno;
    [[maybe_unused]] ssize_t n = ::write(exec_error[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(progress[1]);
  ::close(exec_error[1]);
  int err = 0;
  if (::read(exec_error[0], &err, sizeof err) == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(child, nullptr, 0);
    Fail("cannot run '{}': {}", opt.args[0], std::strerror(err));
  }
  ::close(exec_error[0]);

  // Ctrl-C reaches the job too (same process group); sluice waits for it to write its trace.
  auto previous_int = std::signal(SIGINT, SIG_IGN);
  const bool tty = ::isatty(STDERR_FILENO);
  std::string pending, done_reason;
  int status = 0;
  bool exited = false, stop_sent = false, kill_sent = false, tracer_heard = false;
  int64_t stop_at = 0;
  const int64_t start = MonotonicNanos();
  // If the tracer never reports the end (it was never loaded), stop waiting after the window.
  const int64_t give_up = start + static_cast<int64_t>((opt.seconds + 30) * 1e9);
  while (!exited) {
    pollfd pfd{progress[0], POLLIN, 0};
    if (::poll(&pfd, 1, 200) > 0) {
      char buf[4096];
      ssize_t n = ::read(progress[0], buf, sizeof buf);
      if (n > 0) pending.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        std::istringstream f(line);
        std::string kind;
        f >> kind;
        tracer_heard = true;
        if (kind == "progress" && tty) {
          double t = 0, rate = 0;
          int64_t outputs = 0;
          f >> t >> outputs >> rate;
          fmt::print(stderr, "\r  {:.1f}/{:.0f} s  {} outputs  {:.1f} outputs/s   ", t, opt.seconds,
                     outputs, rate);
        } else if (kind == "done") {
          std::getline(f >> std::ws, done_reason);
        }
      }
      if (n == 0) ::close(std::exchange(progress[0], -1));
    }
    if (::waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      break;
    }
    const int64_t now = MonotonicNanos();
    if (!stop_sent && !opt.keep_running && (done_reason == "window elapsed" || now >= give_up)) {
      ::kill(child, SIGTERM);
      stop_sent = true;
      stop_at = now;
    }
    if (stop_sent && !kill_sent && now - stop_at > 10'000'000'000) {
      ::kill(child, SIGKILL);
      kill_sent = true;
    }
    if (opt.keep_running && !done_reason.empty()) break;
  }
  if (progress[0] >= 0) ::close(progress[0]);
  std::signal(SIGINT, previous_int);
  if (tty) fmt::print(stderr, "\r\033[K");

  if (!fs::exists(trace_path) && tracer_heard) {
    Fail("the job's tracer ran but could not write {} (its message is above); the job {}",
         trace_path.string(), exited ? Describe(status) : "is still running");
  }
  if (!fs::exists(trace_path)) {
    Fail(
        "no sluice pipeline was traced: '{}' {} before creating one (after {:.1f} s). sluice "
        "traces jobs whose input pipeline is built with sluice::pipeline::Pipeline::Create from "
        "libsluice_pipeline; check that the command reaches its data loading, or profile the "
        "pipeline config directly: sluice profile CONFIG",
        opt.args[0], exited ? Describe(status) : "is still running",
        (MonotonicNanos() - start) * 1e-9);
  }
  trace::Trace t = trace::ReadTrace(trace_path);
  int rc = 0;
  const bool we_stopped = stop_sent && WIFSIGNALED(status) &&
                          (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL);
  if (exited) {
    // How the job ended goes into the trace, for the report and for scripts.
    if (WIFEXITED(status)) t.job.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
      const char* abbrev = sigabbrev_np(WTERMSIG(status));
      t.job.exit_signal =
          abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("{}", WTERMSIG(status));
    }
  }
  if (exited && !we_stopped && done_reason.empty()) {
    // The job died before its tracer could finish: keep what was flushed, and say so.
    t.job.cut_short = true;
    t.job.end_reason = fmt::format("job {}", Describe(status));
  }
  if (exited) trace::WriteTrace(t, trace_path);
  if (exited && !we_stopped && done_reason.empty()) {
    fmt::print(stderr,
               "sluice: the job {} after {:.1f} s; the trace up to its last flush is kept\n",
               Describe(status), t.job.duration);
    rc = 1;
  } else if (exited && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    fmt::print(stderr, "sluice: the job {}\n", Describe(status));
  }
  PrintSummary(t, trace_path);
  if (rc == 0) TuneAfterProfile(trace_path.string(), (out / "tuned.json").string());
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
  sub->add_option("--seconds", opt->seconds, "Seconds to trace (default 10)")
      ->check(CLI::PositiveNumber);
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
  return [opt] { return IsConfigMode(*opt) ? ProfileConfig(*opt) : ProfileCommand(*opt); };
}

}  // namespace sluice::cli
