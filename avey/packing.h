// Padding rows computed once: the packed layout of the contexts.
//
// A context whose split has r < k earlier splits starts with P = (k - r) * S zero rows (docs/model.md:
// left padding, not masked). In every block, padding row j of a context mixes only with rows
// j' <= j (the contextualizer is causal), all of them padding too, and every other step works
// row by row; so row j's value depends on j alone and is the same in every context that has it.
// The first k splits of every sequence have padding: at T = 512, S = 64, k = 7 that is 44% of
// all context rows. The packed layout keeps each padding row once:
//
//   packed rows:  [ padding rows 0 .. Pmax-1 | context 0's own rows | context 1's | ... ]
//                 (context n's own rows are its rows P_n .. C-1; Pmax = the largest P_n)
//
// Row by row steps (norms, enricher, fuser) run on the packed rows. The contextualizer needs
// each context whole, C rows: its Z0 (the rows it mixes) is gathered into the [N*C] context
// layout (to_full: context row j < P_n reads packed row j), and its output is gathered back
// (to_packed: each packed row from one context that computes it; padding rows from a context
// with Pmax padding rows). The backward applies the transposes: a padding row's gradient is the
// sum over every context that reads it, added in a fixed order (engine::RowMap).
//
// Exact: the same function as the unpacked layout (tests/test_avey_packing.cpp compares loss
// and every gradient in f64). What changes is only what a block hook sees: the gradient of a
// block's packed output, where a padding row's gradient is that sum.
#pragma once
#include <vector>

#include "engine/ops.h"

namespace avey {

struct Packing {
  int64_t contexts = 0, context_rows = 0, split_size = 0;  // N, C, S
  int64_t pad_rows = 0;  // Pmax: padding rows stored once (0: nothing packed, the [N*C] layout)
  int64_t rows = 0;      // rows of the packed layout (N*C when nothing is packed)
  engine::RowMaps to_full;    // packed -> [N*C] (and its transpose, the backward's sums)
  engine::RowMaps to_packed;  // [N*C] -> packed
  engine::RowMaps current;    // packed -> [N*S]: each context's current split (its last S rows)
  // The same maps as two numbers a context (the GPU's triangle kernels): context n's row j is
  // packed row j when j < pad[n], else offset[n] + j - pad[n]; the padding rows are computed by
  // context `owner` (i32 [N] tensors; packed only).
  engine::Tensor pad, offset;
  int64_t owner = -1;
  bool packed() const { return pad_rows > 0; }
};

// pad[n]: context n's padding rows P_n, 0 <= P_n <= C - S, for N = pad.size() contexts; maps on
// `device`. All zero (or a model told not to pack) gives the [N*C] layout: packed() is false.
Packing make_packing(int64_t split_size, int64_t context_rows, const std::vector<int64_t>& pad, engine::Device device);

// Packed rows <-> the [N*C] context layout, and the current splits [N*S]; recorded. With nothing
// packed, to_contexts and to_packed return their argument.
engine::Tensor to_contexts(const engine::Tensor& x, const Packing& p);
engine::Tensor to_packed(const engine::Tensor& x, const Packing& p);
engine::Tensor current_split(const engine::Tensor& x, const Packing& p);

// The same moves inside a fused op (never recorded): x [rows, w] in p's layout -> every
// context's rows [N*C, w] (x itself when nothing is packed), or its current rows C-S..C-1
// [N*S, w]; and back: x [N*S, w] put at the current rows of p's layout [rows, w], zero
// elsewhere, or added into `into` when it is given.
engine::Tensor gather_contexts(const engine::Tensor& x, const Packing& p);
engine::Tensor current_rows(const engine::Tensor& x, const Packing& p);
engine::Tensor scatter_current_rows(const engine::Tensor& x, const Packing& p, engine::Tensor into = {});

}  // namespace avey
