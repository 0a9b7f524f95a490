#include "avey/packing.h"

#include <algorithm>

#include "engine/fused_ops.h"

namespace avey {

using namespace engine;

namespace {

// current: packed row of each context's row C-S+s (its own rows end each context's block).
void add_current(Packing& p, const std::vector<int32_t>& context_row_source, Device device) {
  const int64_t N = p.contexts, C = p.context_rows, S = p.split_size;
  std::vector<int32_t> cur(size_t(N * S));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) cur[size_t(n * S + s)] = context_row_source[size_t(n * C + C - S + s)];
  p.current = gather_map(cur, p.rows, device);
}

}  // namespace

Packing make_packing(int64_t split_size, int64_t context_rows, const std::vector<int64_t>& pad, Device device) {
  const int64_t N = int64_t(pad.size()), C = context_rows;
  Packing p;
  p.contexts = N, p.split_size = split_size, p.context_rows = C, p.rows = N * C;
  int64_t owner = -1;  // the first context with the most padding computes the shared rows
  for (int64_t n = 0; n < N; ++n) {
    if (pad[size_t(n)] < 0 || pad[size_t(n)] > C - split_size) fail("make_packing", "padding outside [0, C - S]");
    if (pad[size_t(n)] > p.pad_rows) p.pad_rows = pad[size_t(n)], owner = n;
  }
  std::vector<int32_t> full(size_t(N * C));  // context row -> packed row
  if (!p.packed()) {
    for (int64_t i = 0; i < N * C; ++i) full[size_t(i)] = int32_t(i);
    add_current(p, full, device);
    return p;
  }
  std::vector<int32_t> own;  // packed row -> the context row that computes it
  for (int64_t j = 0; j < p.pad_rows; ++j) own.push_back(int32_t(owner * C + j));
  for (int64_t n = 0; n < N; ++n) {
    const int64_t P = pad[size_t(n)];
    for (int64_t j = 0; j < C; ++j) {
      if (j < P) {
        full[size_t(n * C + j)] = int32_t(j);
      } else {
        full[size_t(n * C + j)] = int32_t(own.size());
        own.push_back(int32_t(n * C + j));
      }
    }
  }
  p.rows = int64_t(own.size());
  p.to_full = gather_map(full, p.rows, device);
  p.to_packed = gather_map(own, N * C, device);
  std::vector<int32_t> pads, offsets;  // each context's padding, and the packed row of its first own row
  for (int64_t n = 0; n < N; ++n)
    pads.push_back(int32_t(pad[size_t(n)])), offsets.push_back(full[size_t(n * C + pad[size_t(n)])]);
  p.pad = Tensor::from(pads, {N}, device);
  p.offset = Tensor::from(offsets, {N}, device);
  p.owner = owner;
  add_current(p, full, device);
  return p;
}

Tensor to_contexts(const Tensor& x, const Packing& p) {
  return p.packed() ? map_rows(x, p.to_full) : x;
}

Tensor to_packed(const Tensor& x, const Packing& p) {
  return p.packed() ? map_rows(x, p.to_packed) : x;
}

Tensor current_split(const Tensor& x, const Packing& p) { return map_rows(x, p.current); }

Tensor gather_contexts(const Tensor& x, const Packing& p) { return p.packed() ? apply_map(x, p.to_full.map) : x; }

// Unpacked, the current rows are each context's last S rows: a strided copy of S*w elements a
// context (no index map).
Tensor current_rows(const Tensor& x, const Packing& p) {
  if (p.packed()) return apply_map(x, p.current.map);
  const int64_t w = x.size(1), N = p.contexts, C = p.context_rows, S = p.split_size;
  return reshape(copy_of(Columns{reshape(x, {N, C * w}), (C - S) * w, S * w}), {N * S, w});
}

Tensor scatter_current_rows(const Tensor& x, const Packing& p, Tensor into) {
  const int64_t w = x.size(1), N = p.contexts, C = p.context_rows, S = p.split_size;
  if (p.packed()) {
    Tensor y = apply_map(x, p.current.transposed);
    if (!into.defined()) return y;
    add_(into, y);
    return into;
  }
  if (!into.defined()) into = Tensor::zeros({p.rows, w}, x.dtype(), x.device());
  add_into(reshape(x, {N, S * w}), Columns{reshape(into, {N, C * w}), (C - S) * w, S * w});
  return into;
}

}  // namespace avey
