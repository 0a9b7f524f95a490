// What `avey niah` measures and the forms it is written in: a JSON file (rewritten after every cell,
// read back by --resume), markdown tables and an SVG heatmap.
//
// JSON:
//   {"settings": {"task", "checkpoint", "step", "samples", "seed", "keys", "max_new_tokens", "haystack"},
//    "model": {...config...}, "tokenizer", "device", "memory": "peak RSS" | "peak GPU tensors",
//    "date", "command",
//    "cells": [{"length", "depth", "accuracy" (percent), "seconds" (generation, all samples),
//               "peak_bytes", "samples": [{"answer", "output", "correct", "prompt_tokens"}, ...]}, ...]}
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/svg_heatmap.h"

struct NiahSample {
  std::string answer;  // the passkey, or the needle's value
  std::string output;  // the decoded greedy continuation
  bool correct = false;
  int64_t prompt_tokens = 0;
};

struct NiahCell {
  int64_t length = 0;  // tokens (passkey: nominal)
  int depth = 0;       // percent
  std::vector<NiahSample> samples;
  double seconds = 0;  // the model's generation time over all samples
  int64_t peak_bytes = 0;
  double accuracy() const;  // percent correct
  double mean_prompt_tokens() const;
};

struct NiahReport {
  nlohmann::json header;  // every field but "cells"
  std::vector<NiahCell> cells;
  const NiahCell* find(int64_t length, int depth) const;
};

nlohmann::json to_json(const NiahReport& report);
NiahReport report_from_json(const nlohmann::json& j);  // throws naming the missing field

std::string length_label(int64_t length);  // 1K, 64K, 1M, or the number
// Accuracy by depth (rows) and length (columns), then the mean prompt tokens per length, then
// generation seconds per sample and peak memory per cell, then per answer its right count and most
// frequent outputs over all cells; markdown.
std::string markdown_tables(const NiahReport& report, const std::vector<int64_t>& lengths, const std::vector<int>& depths);
Heatmap heatmap_of(const NiahReport& report, const std::vector<int64_t>& lengths, const std::vector<int>& depths);
