// Reading and writing traces: the sluice-trace/1 JSON document, the chunked sluice-trace/2 file
// (also appended a flush at a time: sluice/trace/chunked.h) and a Chrome trace-event export.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "sluice/trace/trace.h"

namespace sluice::trace {

// The trace as sluice-trace/1 JSON text (series stored column by column). Throws sluice::Error
// naming the field when the trace holds what ParseTrace would reject (a NaN or infinity, a series
// column of the wrong length), rather than produce a trace that cannot be read back.
std::string ToJson(const Trace& trace);

// Writes the trace to `path` atomically (temporary file in the same directory, then rename), so
// a reader never sees a half-written trace: as ToJson, or as sluice-trace/2 lines when
// `trace.format` is kFormatV2. Throws sluice::Error naming the path.
void WriteTrace(const Trace& trace, const std::filesystem::path& path);

// Parses sluice-trace/1 or /2 text. `origin` names the source in errors, which also name the
// field ("trace.json: pipelines[0].stages[2].cpu_seconds: expected a number"; a /2 line adds its
// number: "trace.json:7: ..."). Rejects other formats, inconsistent series lengths, and absurd
// sizes or counts before allocating for them; leaves out a /2 file's incomplete last line.
Trace ParseTrace(std::string_view text, const std::string& origin);

// Reads and parses a trace file; a long sluice-trace/2 file is read from its end (the lines it
// needs, not every sample).
Trace ReadTrace(const std::filesystem::path& path);

// The trace as Chrome trace-event JSON (opens in Perfetto and chrome://tracing): a process per
// pipeline, a thread track per stage worker with its busy time per sample interval, and counter
// tracks for queue depths, stage output rates, process CPU, RSS and GPU busy.
std::string ToChromeTrace(const Trace& trace);

}  // namespace sluice::trace
