#include "cli/svg_heatmap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cli/svg.h"
#include "engine/atomic_file.h"

namespace {

// Linear in RGB between the three stops: red at 0, yellow at 50, green at 100 (of the scale).
std::string colour(double v) {
  const int stops[3][3] = {{0xF0, 0x49, 0x6E}, {0xEB, 0xB8, 0x39}, {0x0C, 0xD7, 0x9F}};
  const double t = std::clamp(v, 0.0, 100.0) / 50.0;  // 0..2
  const int i = std::min(1, int(t));
  const double f = t - i;
  int rgb[3];
  for (int c = 0; c < 3; ++c) rgb[c] = int(std::lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c])));
  return fmt::format("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2]);
}

}  // namespace

void write_svg_heatmap(const std::string& path, const Heatmap& map) {
  if (map.values.size() != map.rows.size()) throw std::invalid_argument("heatmap: one row of values per row label");
  for (const auto& row : map.values)
    if (row.size() != map.columns.size()) throw std::invalid_argument("heatmap: one value per column label in each row");
  const double cell_w = 64, cell_h = 34, left = 80, top = 44, bottom = 62, right = 110;
  const double W = left + cell_w * double(map.columns.size()) + right, H = top + cell_h * double(map.rows.size()) + bottom;
  std::string svg = svg_begin(W, H, map.title);
  for (size_t r = 0; r < map.rows.size(); ++r) {
    const double y = top + cell_h * double(r);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 8, y + cell_h / 2 + 4,
                       svg_escape(map.rows[r]));
    for (size_t c = 0; c < map.columns.size(); ++c) {
      const double x = left + cell_w * double(c), v = map.values[r][c];
      const double scaled = map.high > map.low ? 100.0 * (v - map.low) / (map.high - map.low) : 50.0;
      const bool known = std::isfinite(v);
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"white\" stroke-width=\"1.5\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#222\">{}</text>\n",
          x, y, cell_w, cell_h, known ? colour(scaled) : "#E6E6E6", x + cell_w / 2, y + cell_h / 2 + 4,
          known ? fmt::format("{:.{}f}", v, map.digits) : "-");
    }
  }
  for (size_t c = 0; c < map.columns.size(); ++c)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       left + cell_w * (double(c) + 0.5), top + cell_h * double(map.rows.size()) + 18,
                       svg_escape(map.columns[c]));
  const double plot_h = cell_h * double(map.rows.size());
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     left + cell_w * double(map.columns.size()) / 2, H - 14, svg_escape(map.x_label));
  svg += fmt::format("<text transform=\"translate(20 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + plot_h / 2, svg_escape(map.y_label));
  // The colour bar: green at the top (high), red at the bottom (low).
  const double bar_x = W - right + 24;
  svg += "<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int v : {0, 50, 100}) svg += fmt::format("<stop offset=\"{}%\" stop-color=\"{}\"/>", v, colour(v));
  svg += "</linearGradient></defs>\n";
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"16\" height=\"{:.1f}\" fill=\"url(#scale)\"/>\n", bar_x, top, plot_h);
  for (int v : {0, 50, 100})
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\">{:.{}f}</text>\n", bar_x + 22, top + plot_h * (1 - v / 100.0) + 4,
                       map.low + (map.high - map.low) * v / 100.0, map.digits);
  svg += fmt::format("<text transform=\"translate({} {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     bar_x + 60, top + plot_h / 2, svg_escape(map.value_label));
  svg += "</svg>\n";
  engine::write_file_atomic(path, svg);
}
