// Pieces shared by the SVG writers (svg_plot.h: line plots, svg_heatmap.h: heatmaps).
#pragma once
#include <string>

// Text made safe inside SVG elements and attributes (<, >, & and ").
std::string svg_escape(const std::string& s);
// The opening of a standalone SVG document: the <svg> element, a white background and the title
// centred at the top. The caller adds the drawing and "</svg>\n".
std::string svg_begin(double width, double height, const std::string& title);
