// A small SVG line-plot writer for training curves (loss and validation loss over steps):
// people would rather look at a curve than read a column of numbers.
#pragma once
#include <string>
#include <utility>
#include <vector>

struct Series {
  std::string label;
  std::string color;  // any SVG colour, e.g. "#1f77b4"
  std::vector<std::pair<double, double>> points;  // (x, y)
};

// Writes a standalone SVG with axes, ticks, a legend and one polyline per series. Atomic.
void write_svg_plot(const std::string& path, const std::string& title, const std::string& x_label,
                    const std::string& y_label, const std::vector<Series>& series);
