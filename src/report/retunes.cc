// The report's section on online tuning: every re-tune the job's own tuner made, with its reason,
// prediction and measurement (the same moments are marked on the outputs chart).
#include <fmt/format.h>

#include "report/internal/sections.h"
#include "sluice/common/figures.h"

namespace sluice::report::internal {

namespace {

std::string Rate(double x) { return x < 0 ? "-" : Num(x); }

std::string ChangeList(const trace::Retune& r) {
  if (r.changes.empty()) return "no change";
  std::string out;
  for (const trace::RetuneChange& c : r.changes) {
    if (!out.empty()) out += "<br/>";
    out += Escape(trace::ChangeText(c));
    if (c.when != "now") out += fmt::format(" <em>({})</em>", Escape(c.when));
    if (!c.why.empty()) out += fmt::format("<div class=\"caption\">{}</div>", Escape(c.why));
    if (!c.note.empty()) out += fmt::format("<div class=\"caption\">{}</div>", Escape(c.note));
  }
  return out;
}

}  // namespace

std::string RetuneLabel(const trace::Retune& r, size_t index) {
  const char* what = r.action == "rollback" ? "rollback"
                     : r.action == "replan" ? "re-plan"
                                            : "re-tune";
  return fmt::format("{} {}", what, index + 1);
}

std::string RetunesSection(const View& v) {
  const std::vector<trace::Retune>& retunes = v.pipeline.retunes;
  if (retunes.empty()) return "";
  std::string s = "<section id=\"retunes\"><h2>Re-tunes while it ran</h2>";
  const auto replans = std::count_if(retunes.begin(), retunes.end(),
                                     [](const trace::Retune& r) { return r.action == "replan"; });
  const size_t changed = retunes.size() - static_cast<size_t>(replans);
  s += fmt::format(
      "<p>The job's own tuner changed its knobs {} time{} (marked on the outputs chart). Each "
      "change came from the model: it was applied when predicted to gain more than 5 %, measured "
      "over the next window, and kept or rolled back.{}</p>",
      changed, changed == 1 ? "" : "s",
      replans == 0 ? ""
                   : fmt::format(" It re-planned {} more time{} after the rate moved (a phase "
                                 "change) and found no change worth making.",
                                 replans, replans == 1 ? "" : "s"));
  s += "<div class=\"scroll\"><table id=\"retune-table\">";
  s += "<tr><th>#</th><th>at (s)</th><th>action</th><th>changes</th><th>reason</th>"
       "<th>before (" +
       Escape(v.unit) +
       ")</th><th>predicted</th><th>calibrated</th>"
       "<th>measured</th><th>kept</th></tr>";
  for (size_t i = 0; i < retunes.size(); ++i) {
    const trace::Retune& r = retunes[i];
    const bool model = r.action == "apply" || r.action == "replan";
    s += fmt::format(
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>",
        r.kept ? "" : " class=\"rolled-back\"", i + 1, Num(r.t), Escape(r.action), ChangeList(r),
        Escape(r.reason), Rate(r.before_outputs_per_s),
        model ? Rate(r.predicted_outputs_per_s) : "-",
        model ? Rate(r.calibrated_outputs_per_s) : "-", Rate(r.measured_outputs_per_s),
        r.action == "rollback" || r.action == "replan" ? "-" : (r.kept ? "yes" : "rolled back"));
  }
  return s + "</table></div></section>";
}

}  // namespace sluice::report::internal
