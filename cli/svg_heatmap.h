// An SVG heatmap writer for scores in 0..100 (needle-in-a-haystack accuracy by context length and
// depth) or any range (log10 gradient norms by layer and step): one square per cell, coloured
// red (low) -> yellow -> green (high) as the reference's plots (#F0496E, #EBB839, #0CD79F), with
// its value written in it and a colour bar beside.
#pragma once
#include <string>
#include <vector>

struct Heatmap {
  std::string title, x_label, y_label, value_label;
  std::vector<std::string> columns, rows;   // labels, left to right and top to bottom
  std::vector<std::vector<double>> values;  // [row][column], low..high; NaN: not measured (grey)
  double low = 0, high = 100;               // the colour scale's ends (values outside take the end's colour)
  int digits = 0;                           // decimals of the values written in the cells
};

// Writes a standalone SVG. Atomic. Throws when values does not match the labels.
void write_svg_heatmap(const std::string& path, const Heatmap& map);
