// Inline SVG figures: line charts and the pipeline graph, written as text.
#include "report/internal/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "sluice/common/figures.h"
#include "sluice/report/report.h"

namespace sluice::report::internal {
namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string Colour(size_t i) { return kPalette[i % std::size(kPalette)]; }

// Coordinates with one decimal: enough for a screen, and short.
std::string C(double v) { return fmt::format("{:.1f}", v); }

}  // namespace

std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo) || target < 1) return {0};
  const double rough = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  const double residual = rough / magnitude;
  const double step = magnitude * (residual < 1.5 ? 1 : residual < 3 ? 2 : residual < 7 ? 5 : 10);
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && ticks.size() < 50;
       v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string UtilizationColour(double utilization) {
  const double u = std::clamp(utilization, 0.0, 1.0);
  return fmt::format("hsl({:.0f},70%,78%)", 120 * (1 - u));
}

std::string Truncate(const std::string& text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return text.substr(0, i) + "…";
      ++chars;
    }
  }
  return text;
}

namespace {

// A chart's frame: its size, margins and the data ranges its axes span.
struct Plot {
  static constexpr double kWidth = 720, kHeight = 240;
  static constexpr double kLeft = 64, kRight = 16, kTop = 20, kBottom = 44;
  static constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
  double x_lo = 0, x_hi = 1, y_hi = 1;

  double Px(double x) const { return kLeft + (x - x_lo) / (x_hi - x_lo) * kPlotW; }
  double Py(double y) const { return kTop + kPlotH - std::clamp(y / y_hi, 0.0, 1.0) * kPlotH; }
};

// The ranges that hold every finite point and marker (from 0 on y; from 0 on x when asked).
Plot FrameOf(const ChartSpec& spec, const std::vector<Marker>& x_markers,
             const std::vector<Marker>& y_markers) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_hi = 0;
  for (const Line& line : spec.lines) {
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      if (!std::isfinite(line.y[i]) || !std::isfinite(line.x[i])) continue;
      x_lo = std::min(x_lo, line.x[i]);
      x_hi = std::max(x_hi, line.x[i]);
      y_hi = std::max(y_hi, line.y[i]);
    }
  }
  for (const Marker& m : y_markers) y_hi = std::max(y_hi, m.at);
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  for (const Marker& m : x_markers) x_lo = std::min(x_lo, m.at), x_hi = std::max(x_hi, m.at);
  if (spec.x_from_zero) x_lo = std::min(x_lo, 0.0);
  if (!(x_hi > x_lo)) x_hi = x_lo + 1;
  y_hi = y_hi > 0 ? y_hi * 1.08 : 1;
  if (spec.y_max) y_hi = std::max(y_hi, *spec.y_max);
  Plot plot;
  plot.x_lo = x_lo;
  plot.x_hi = x_hi;
  plot.y_hi = y_hi;
  return plot;
}

// The shaded x range, the grid, the axes with their ticks and labels.
std::string AxesSvg(const ChartSpec& spec, const Plot& p) {
  constexpr double kLeft = Plot::kLeft, kTop = Plot::kTop, kHeight = Plot::kHeight;
  constexpr double plot_w = Plot::kPlotW, plot_h = Plot::kPlotH;
  std::string s;
  if (spec.shade_from && spec.shade_to && *spec.shade_to > *spec.shade_from) {
    const double a = p.Px(std::max(*spec.shade_from, p.x_lo));
    const double b = p.Px(std::min(*spec.shade_to, p.x_hi));
    s += fmt::format(
        "<rect class=\"shade\" x=\"{}\" y=\"{}\" width=\"{}\" "
        "height=\"{}\"><title>{}</title></rect>",
        C(a), C(kTop), C(std::max(b - a, 0.0)), C(plot_h), Escape(spec.shade_label));
    s += fmt::format("<text class=\"small\" x=\"{}\" y=\"{}\">{}</text>", C(a + 3), C(kTop + 11),
                     Escape(spec.shade_label));
  }
  for (double v : NiceTicks(0, p.y_hi, 5)) {
    s += fmt::format(
        "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><text class=\"tick\" "
        "x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        C(kLeft), C(p.Py(v)), C(kLeft + plot_w), C(p.Py(v)), C(kLeft - 4), C(p.Py(v) + 4), Num(v));
  }
  for (double v : NiceTicks(p.x_lo, p.x_hi, 8)) {
    s += fmt::format(
        "<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><text class=\"tick\" "
        "x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        C(p.Px(v)), C(kTop + plot_h), C(p.Px(v)), C(kTop + plot_h + 4), C(p.Px(v)),
        C(kTop + plot_h + 16), Num(v));
  }
  s += fmt::format(
      "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>"
      "<line class=\"axis\" x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\"/>",
      C(kLeft), C(kTop), C(kTop + plot_h), C(kLeft + plot_w));
  s += fmt::format("<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                   C(kLeft + plot_w / 2), C(kHeight - 6), Escape(spec.x_label));
  s += fmt::format(
      "<text class=\"label\" x=\"14\" y=\"{0}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 {0})\">{1}</text>",
      C(kTop + plot_h / 2), Escape(spec.y_label));
  return s;
}

// The horizontal and vertical reference lines with their labels.
std::string MarkersSvg(const Plot& p, const std::vector<Marker>& x_markers,
                       const std::vector<Marker>& y_markers) {
  constexpr double kLeft = Plot::kLeft, kTop = Plot::kTop;
  constexpr double plot_w = Plot::kPlotW, plot_h = Plot::kPlotH;
  std::string s;
  for (const Marker& m : y_markers) {
    s += fmt::format(
        "<line class=\"marker\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>{}</title></line>"
        "<text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        C(kLeft), C(p.Py(m.at)), C(kLeft + plot_w), C(p.Py(m.at)), Escape(m.label),
        C(kLeft + plot_w - 2), C(p.Py(m.at) - 3), Escape(m.label));
  }
  for (size_t k = 0; k < x_markers.size(); ++k) {
    // Labels stack upwards so that markers close together stay readable; a marker in the right
    // half has its label on its left.
    const Marker& m = x_markers[k];
    const bool left = p.Px(m.at) > kLeft + plot_w / 2;
    s += fmt::format(
        "<line class=\"marker\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>{}</title></line>"
        "<text class=\"small\" x=\"{}\" y=\"{}\" text-anchor=\"{}\">{}</text>",
        C(p.Px(m.at)), C(kTop), C(p.Px(m.at)), C(kTop + plot_h), Escape(m.label),
        C(p.Px(m.at) + (left ? -3 : 3)), C(kTop + plot_h - 6 - 14 * static_cast<double>(k)),
        left ? "end" : "start", Escape(m.label));
  }
  return s;
}

// Line `li` of the chart: one path, broken where y is NaN, with its range as a tooltip; and its
// points when asked. Empty for a line with no finite point.
std::string LineSvg(const ChartSpec& spec, const Plot& p, size_t li) {
  const Line& line = spec.lines[li];
  std::string d;
  bool pen_down = false;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  size_t count = 0;
  for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
    if (!std::isfinite(line.y[i])) {
      pen_down = false;
      continue;
    }
    d += fmt::format("{}{} {}", pen_down ? " L" : (d.empty() ? "M" : " M"), C(p.Px(line.x[i])),
                     C(p.Py(line.y[i])));
    pen_down = true;
    lo = std::min(lo, line.y[i]);
    hi = std::max(hi, line.y[i]);
    sum += line.y[i];
    ++count;
  }
  if (count == 0) return "";
  const std::string summary = fmt::format("{}: {} to {} (mean {}) {}", line.name, Num(lo), Num(hi),
                                          Num(sum / count), spec.y_label);
  std::string s =
      fmt::format("<path class=\"line\" d=\"{}\" stroke=\"{}\"{}><title>{}</title></path>", d,
                  Colour(li), line.dashed ? " stroke-dasharray=\"6 4\"" : "", Escape(summary));
  if (line.points) {
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      if (!std::isfinite(line.y[i])) continue;
      s += fmt::format(
          "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}: {} {} at {} "
          "{}</title></circle>",
          C(p.Px(line.x[i])), C(p.Py(line.y[i])), Colour(li), Escape(line.name), Num(line.y[i]),
          Escape(line.point_unit), Num(line.x[i]), Escape(spec.x_label));
    }
  }
  return s;
}

}  // namespace

std::string LineChart(const ChartSpec& spec) {
  // Markers at an unbounded or undefined value (a limit that does not bind) are not drawn.
  std::vector<Marker> x_markers, y_markers;
  for (const Marker& m : spec.x_markers) {
    if (std::isfinite(m.at)) x_markers.push_back(m);
  }
  for (const Marker& m : spec.y_markers) {
    if (std::isfinite(m.at)) y_markers.push_back(m);
  }
  const Plot plot = FrameOf(spec, x_markers, y_markers);
  std::string s;
  s += fmt::format(
      "<figure id=\"{}\" class=\"chart\"><figcaption class=\"chart-title\">{}</figcaption>",
      Escape(spec.id), Escape(spec.title));
  s += fmt::format(
      "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"{}\">",
      Plot::kWidth, Plot::kHeight, Plot::kWidth, Plot::kHeight, Escape(spec.title));
  s += AxesSvg(spec, plot);
  s += MarkersSvg(plot, x_markers, y_markers);
  for (size_t li = 0; li < spec.lines.size(); ++li) s += LineSvg(spec, plot, li);
  s += "</svg>";
  s += "<ul class=\"legend\">";
  for (size_t li = 0; li < spec.lines.size(); ++li) {
    s += fmt::format("<li><span class=\"swatch{}\" style=\"border-color: {}\"></span>{}</li>",
                     spec.lines[li].dashed ? " dashed" : "", Colour(li),
                     Escape(spec.lines[li].name));
  }
  s += "</ul>";
  if (!spec.caption.empty()) s += fmt::format("<p class=\"caption\">{}</p>", Escape(spec.caption));
  s += "</figure>";
  return s;
}

std::string EmptyChart(const std::string& id, const std::string& title, const std::string& why) {
  return fmt::format(
      "<figure id=\"{}\" class=\"chart empty\"><figcaption class=\"chart-title\">{}</figcaption>"
      "<p class=\"caption\">{}</p></figure>",
      Escape(id), Escape(title), Escape(why));
}

std::string FlowGraph(const std::string& id, const std::vector<Box>& boxes,
                      const std::string& caption) {
  constexpr double kBoxW = 172, kBoxH = 96, kGapX = 40, kGapY = 44, kMargin = 10;
  constexpr size_t kPerRow = 5;
  const size_t rows = (boxes.size() + kPerRow - 1) / kPerRow;
  const size_t cols = std::min(boxes.size(), kPerRow);
  const double width = 2 * kMargin + cols * kBoxW + (cols > 0 ? cols - 1 : 0) * kGapX;
  const double legend_h = 34;
  const double height = 2 * kMargin + rows * kBoxH + (rows > 0 ? rows - 1 : 0) * kGapY + legend_h;
  const auto bx = [&](size_t i) { return kMargin + (i % kPerRow) * (kBoxW + kGapX); };
  const auto by = [&](size_t i) { return kMargin + (i / kPerRow) * (kBoxH + kGapY); };
  const std::string arrow_id = Escape(id) + "-arrow";

  std::string s = fmt::format(
      "<figure id=\"{}\" class=\"graph\"><svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" "
      "role=\"img\" aria-label=\"pipeline graph\"><defs><marker id=\"{}\" viewBox=\"0 0 10 10\" "
      "refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0 "
      "0 L10 5 L0 10 z\" fill=\"#555\"/></marker></defs>",
      Escape(id), C(width), C(height), C(width), C(height), arrow_id);
  for (size_t i = 0; i + 1 < boxes.size(); ++i) {
    if ((i + 1) % kPerRow != 0) {
      s += fmt::format(
          "<line class=\"edge\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" marker-end=\"url(#{})\"/>",
          C(bx(i) + kBoxW), C(by(i) + kBoxH / 2), C(bx(i + 1) - 2), C(by(i + 1) + kBoxH / 2),
          arrow_id);
    } else {
      s += fmt::format("<path class=\"edge\" d=\"M{} {} V{} H{} V{}\" marker-end=\"url(#{})\"/>",
                       C(bx(i) + kBoxW / 2), C(by(i) + kBoxH), C(by(i) + kBoxH + kGapY / 2),
                       C(bx(i + 1) + kBoxW / 2), C(by(i + 1) - 2), arrow_id);
    }
  }
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Box& b = boxes[i];
    const double x = bx(i), y = by(i);
    s += fmt::format("<g class=\"box{}\"><title>{}</title>", b.highlight ? " bottleneck" : "",
                     Escape(b.tooltip));
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\" fill=\"{}\"/>",
                     C(x), C(y), C(kBoxW), C(kBoxH),
                     b.utilization ? UtilizationColour(*b.utilization) : "#e4e4e4");
    s += fmt::format("<text class=\"box-title\" x=\"{}\" y=\"{}\">{}</text>", C(x + 8), C(y + 18),
                     Escape(Truncate(b.title, 20)));
    s += fmt::format("<text class=\"box-sub\" x=\"{}\" y=\"{}\">{}</text>", C(x + 8), C(y + 34),
                     Escape(Truncate(b.subtitle, 24)));
    for (size_t l = 0; l < b.lines.size() && l < 3; ++l) {
      s += fmt::format("<text class=\"box-line\" x=\"{}\" y=\"{}\">{}</text>", C(x + 8),
                       C(y + 52 + 16 * l), Escape(Truncate(b.lines[l], 26)));
    }
    s += "</g>";
  }
  // The colour scale.
  const double ly = height - legend_h + 8;
  s += fmt::format("<text class=\"small\" x=\"{}\" y=\"{}\">utilization:</text>", C(kMargin),
                   C(ly + 12));
  for (int k = 0; k <= 4; ++k) {
    const double x = kMargin + 74 + k * 64;
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"14\" fill=\"{}\"/><text class=\"small\" "
        "x=\"{}\" y=\"{}\">{}%</text>",
        C(x), C(ly), UtilizationColour(k / 4.0), C(x + 24), C(ly + 12), k * 25);
  }
  s += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"14\" fill=\"#e4e4e4\"/><text "
      "class=\"small\" x=\"{}\" y=\"{}\">no work measured</text>",
      C(kMargin + 74 + 5 * 64), C(ly), C(kMargin + 98 + 5 * 64), C(ly + 12));
  s += "</svg>";
  if (!caption.empty()) s += fmt::format("<p class=\"caption\">{}</p>", Escape(caption));
  s += "</figure>";
  return s;
}

}  // namespace sluice::report::internal
