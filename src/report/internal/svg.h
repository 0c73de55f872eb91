// Inline SVG figures of the report: line charts with axes and units, and the pipeline graph.
// Every string a caller passes is escaped here; callers pass plain text.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sluice::report::internal {

// One line of a chart. A NaN y breaks the line (no data there).
struct Line {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  bool dashed = false;
  bool points = false;     // also draw each point, with a tooltip "x_label y: value"
  std::string point_unit;  // unit for the points' tooltips ("batches/s")
};

// A vertical (at x) or horizontal (at y) reference line with a label.
struct Marker {
  double at = 0;
  std::string label;
};

struct ChartSpec {
  std::string id;       // the <figure>'s id
  std::string title;    // shown above the chart
  std::string x_label;  // with its unit: "seconds since tracing began"
  std::string y_label;  // with its unit: "outputs/s"
  std::vector<Line> lines;
  std::optional<double> shade_from;  // a shaded x range (the steady-state window)
  std::optional<double> shade_to;
  std::string shade_label;
  std::vector<Marker> x_markers;
  std::vector<Marker> y_markers;
  std::optional<double> y_max;  // at least this high (e.g. 100 for percentages)
  bool x_from_zero = false;
  std::string caption;  // plain text under the chart
};

// A <figure> with an SVG line chart: axes with ticks and labels, a legend, markers, and a
// <title> tooltip on each line (its name and range) and on each drawn point.
std::string LineChart(const ChartSpec& spec);

// A <figure> holding only a caption, for a chart that has nothing to draw (and says why).
std::string EmptyChart(const std::string& id, const std::string& title, const std::string& why);

// One box of the pipeline graph.
struct Box {
  std::string title;                  // first line (the stage's name)
  std::string subtitle;               // second line (op)
  std::vector<std::string> lines;     // further lines (workers, rate, utilization)
  std::optional<double> utilization;  // colours the box; absent: grey
  bool highlight = false;             // the bottleneck: a thick red border
  std::string tooltip;                // the <title>
};

// A <figure> with the boxes in rows, joined by arrows in order.
std::string FlowGraph(const std::string& id, const std::vector<Box>& boxes,
                      const std::string& caption);

// Ticks between `lo` and `hi` at a round step (1, 2 or 5 times a power of ten), about `target`
// of them.
std::vector<double> NiceTicks(double lo, double hi, int target);

// Fill colour for a utilization in [0, 1]: green when idle, through yellow, to red when saturated.
std::string UtilizationColour(double utilization);

// `text` cut to at most `max_chars` characters (UTF-8 aware) with an ellipsis when cut.
std::string Truncate(const std::string& text, size_t max_chars);

}  // namespace sluice::report::internal
