// The job `sluice profile` traces, run as a child process: started with the tracer's environment
// and a progress pipe, its progress shown, stopped with SIGTERM (then SIGKILL) once its tracer's
// window has elapsed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice::cli {

struct ChildJobOptions {
  std::vector<std::string> args;                         // CMD ARGS...
  std::vector<std::pair<std::string, std::string>> env;  // set in the job before it starts
  double seconds = 10;  // the tracing window; past it plus 30 s the job is stopped anyway; 0: none
  bool keep_running = false;   // leave the job running once its tracer is done
  bool show_progress = false;  // a progress line on stderr (a terminal)
};

struct ChildJob {
  bool exited = false;        // the job ended (false: left running with keep_running)
  int status = 0;             // waitpid's status, when exited
  bool stop_sent = false;     // sluice sent SIGTERM
  bool tracer_heard = false;  // the job's tracer wrote at least one progress line
  std::string done_reason;    // the tracer's "done" reason; empty when it never said
  int64_t start_ns = 0;       // MonotonicNanos() at the start
};

// Runs `options.args` with `options.env` and SLUICE_TRACE_PROGRESS_FD set to the write end of a
// progress pipe, and supervises it until it exits (or, with keep_running, until its tracer is
// done). Ctrl-C is ignored meanwhile: it reaches the job, which writes its trace. Throws
// sluice::Error when the job cannot be started.
ChildJob RunChildJob(const ChildJobOptions& options);

// How a job with waitpid status `status` ended, in words ("exited with status 1").
std::string DescribeStatus(int status);

}  // namespace sluice::cli
