// Ops that move data without arithmetic: reshape, row and column slices, concatenation,
// gathering rows by index, dtype casts. Their backward passes move the gradient back.
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (numel(shape) != x.numel()) fail("reshape", "cannot view " + x.describe() + " as " + to_string(shape));
  Tensor y = x.view(0, shape);
  Shape in = x.shape();
  record(y, "reshape", {x}, [in](const Tensor& g) -> std::vector<Tensor> { return {reshape(g, in)}; });
  return y;
}

namespace {
// The number of rows when x is seen as [rows, last dim] (safe when the last dim is 0).
int64_t leading_rows(const Tensor& x) { return numel(Shape(x.shape().begin(), x.shape().end() - 1)); }

Shape with_last(Shape s, int64_t last) {
  s.back() = last;
  return s;
}
}  // namespace

// A window of rows of x, sharing its storage. Backward: the gradient lands in those rows of
// a zero tensor shaped like x (rows outside the window had no effect on the output).
Tensor slice_rows(const Tensor& x, int64_t begin, int64_t end) {
  if (x.ndim() < 1) fail("slice_rows", "needs at least 1 dim, got " + x.describe());
  if (begin < 0 || begin > end || end > x.size(0))
    fail("slice_rows", fmt::format("rows [{}, {}) are not inside {}", begin, end, x.describe()));
  const int64_t inner = numel(Shape(x.shape().begin() + 1, x.shape().end()));
  Shape s = x.shape();
  s[0] = end - begin;
  Tensor y = x.view(begin * inner, s);
  Shape in = x.shape();
  record(y, "slice_rows", {x}, [in, begin, inner](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::zeros(in, g.dtype(), g.device());
    gx.view(begin * inner, g.shape()).copy_(g);
    return {gx};
  });
  return y;
}

// y[..., c] = x[..., begin + c]. Backward: gx[..., begin + c] = gy[..., c], zero elsewhere.
Tensor slice_cols(const Tensor& x, int64_t begin, int64_t end) {
  if (x.ndim() < 1) fail("slice_cols", "needs at least 1 dim, got " + x.describe());
  const int64_t cols = x.size(-1), rows = leading_rows(x), width = end - begin;
  if (begin < 0 || begin > end || end > cols)
    fail("slice_cols", fmt::format("columns [{}, {}) are not inside {}", begin, end, x.describe()));
  Tensor y = Tensor::empty(with_last(x.shape(), width), x.dtype(), x.device());
  AVEY_DISPATCH("slice_cols", x, copy_cols, rows, width, x.data<T>(), cols, begin, y.data<T>(), width, 0, false);
  Shape in = x.shape();
  record(y, "slice_cols", {x}, [in, rows, cols, width, begin](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::zeros(in, g.dtype(), g.device());
    AVEY_DISPATCH("slice_cols", g, copy_cols, rows, width, g.data<T>(), width, 0, gx.data<T>(), cols, begin, false);
    return {gx};
  });
  return y;
}

// Checks that xs can be joined along their first dim (along_rows) or last dim: one device, a
// floating dtype, every other dim equal. Returns the joined size.
static int64_t concat_size(const std::string& op, const std::vector<Tensor>& xs, bool along_rows) {
  if (xs.empty()) fail(op, "needs at least one tensor");
  const Tensor& x0 = xs[0];
  if (x0.ndim() < 1) fail(op, "needs at least 1 dim, got " + x0.describe());
  const size_t joined = along_rows ? 0 : x0.shape().size() - 1;
  int64_t total = 0;
  for (const Tensor& x : xs) {
    check_same_device(op, x0, x);
    check_same_dtype(op, x0, x);
    check_floating(op, x);
    Shape others = x.shape();
    if (others.size() == x0.shape().size()) others[joined] = x0.shape()[joined];
    if (others != x0.shape())
      fail(op, std::string(along_rows ? "trailing" : "leading") + " dims differ: " + x0.describe() + " and " + x.describe());
    total += x.shape()[joined];
  }
  return total;
}

// y = [x0 | x1 | ...] along the last dim. Backward: each input gets its own block of columns.
Tensor concat_cols(const std::vector<Tensor>& xs) {
  const std::string op = "concat_cols";
  const int64_t total = concat_size(op, xs, false);
  const Tensor& x0 = xs[0];
  const int64_t rows = leading_rows(x0);
  Tensor y = Tensor::empty(with_last(x0.shape(), total), x0.dtype(), x0.device());
  std::vector<int64_t> widths;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    const int64_t w = x.size(-1);
    AVEY_DISPATCH(op, x, copy_cols, rows, w, x.data<T>(), w, 0, y.data<T>(), total, off, false);
    widths.push_back(w);
    off += w;
  }
  std::vector<Shape> shapes;
  for (const Tensor& x : xs) shapes.push_back(x.shape());
  record(y, op, xs, [rows, total, widths, shapes](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> gs;
    int64_t off = 0;
    for (size_t i = 0; i < widths.size(); ++i) {
      Tensor gi = Tensor::empty(shapes[i], g.dtype(), g.device());
      AVEY_DISPATCH("concat_cols", g, copy_cols, rows, widths[i], g.data<T>(), total, off, gi.data<T>(), widths[i], 0,
                    false);
      gs.push_back(gi);
      off += widths[i];
    }
    return gs;
  });
  return y;
}

// y = [x0; x1; ...] along dim 0. Backward: each input gets its own block of rows.
Tensor concat_rows(const std::vector<Tensor>& xs) {
  const std::string op = "concat_rows";
  const int64_t total = concat_size(op, xs, true);
  const Tensor& x0 = xs[0];
  Shape s = x0.shape();
  s[0] = total;
  Tensor y = Tensor::empty(s, x0.dtype(), x0.device());
  std::vector<Shape> shapes;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    y.view(off, x.shape()).copy_(x);
    off += x.numel();
    shapes.push_back(x.shape());
  }
  record(y, op, xs, [shapes](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> gs;
    int64_t off = 0;
    for (const Shape& sh : shapes) {
      gs.push_back(g.view(off, sh));
      off += numel(sh);
    }
    return gs;
  });
  return y;
}

std::vector<Tensor> split_cols(const Tensor& x, const std::vector<int64_t>& widths) {
  if (x.ndim() < 1) fail("split_cols", "needs at least 1 dim, got " + x.describe());
  int64_t total = 0;
  for (int64_t w : widths) {
    if (w < 0) fail("split_cols", fmt::format("negative width {}", w));
    total += w;
  }
  if (total != x.size(-1))
    fail("split_cols", fmt::format("widths sum to {} but {} has {} columns", total, x.describe(), x.size(-1)));
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t w : widths) {
    out.push_back(slice_cols(x, off, off + w));
    off += w;
  }
  return out;
}

// y[i, :] = table[index[i], :]. Backward: gtable[r, :] = sum of gy[i, :] over i with
// index[i] = r (a deterministic scatter-add; rows never looked up get 0).
Tensor gather_rows(const Tensor& table, const Tensor& index) {
  const std::string op = "gather_rows";
  check_floating(op, table);
  check_same_device(op, table, index);
  if (table.ndim() != 2) fail(op, "table must be [rows, cols], got " + table.describe());
  if (index.dtype() != DType::I32) fail(op, "index must be i32, got " + index.describe());
  const int64_t R = table.size(0), cols = table.size(1), n = index.numel();
  if (!index.is_cuda()) {
    const int32_t* idx = index.data<int32_t>();
    for (int64_t i = 0; i < n; ++i)
      if (idx[i] < 0 || idx[i] >= R)
        fail(op, fmt::format("index {} at position {} is out of range for table {}", idx[i], i, table.describe()));
  }
  Shape s = index.shape();
  s.push_back(cols);
  Tensor y = Tensor::empty(s, table.dtype(), table.device());
  AVEY_DISPATCH(op, table, gather_rows, n, cols, table.data<T>(), R, index.data<int32_t>(), y.data<T>());
  Shape ts = table.shape();
  record(y, op, {table}, [ts, n, cols, index](const Tensor& g) -> std::vector<Tensor> {
    Tensor gt = Tensor::zeros(ts, g.dtype(), g.device());
    AVEY_DISPATCH("gather_rows", g, scatter_add_rows, n, cols, g.data<T>(), index.data<int32_t>(), gt.data<T>(),
                  ts[0]);
    return {gt};
  });
  return y;
}

RowMaps gather_map(const std::vector<int32_t>& source, int64_t in_rows, Device device) {
  const int64_t out_rows = int64_t(source.size());
  std::vector<int32_t> ptr{0}, src, tptr(size_t(in_rows + 1), 0), tsrc;
  for (int32_t i : source) {
    if (i >= in_rows) fail("gather_map", fmt::format("source row {} of {} rows", i, in_rows));
    if (i >= 0) src.push_back(i), ++tptr[size_t(i) + 1];
    ptr.push_back(int32_t(src.size()));
  }
  for (int64_t i = 0; i < in_rows; ++i) tptr[size_t(i + 1)] += tptr[size_t(i)];
  tsrc.resize(src.size());
  std::vector<int32_t> next(tptr.begin(), tptr.end() - 1);
  for (int64_t r = 0; r < out_rows; ++r)  // increasing r: each sum adds its rows in order
    if (source[size_t(r)] >= 0) tsrc[size_t(next[size_t(source[size_t(r)])]++)] = int32_t(r);
  auto upload = [device](const std::vector<int32_t>& v) { return Tensor::from(v, {int64_t(v.size())}, device); };
  return {{in_rows, out_rows, upload(ptr), upload(src)}, {out_rows, in_rows, upload(tptr), upload(tsrc)}};
}

Tensor apply_map(const Tensor& x, const RowMap& map) {
  const std::string op = "map_rows";
  check_floating(op, x);
  if (x.ndim() != 2 || x.size(0) != map.in_rows)
    fail(op, fmt::format("x must be [{}, n], got {}", map.in_rows, x.describe()));
  check_same_device(op, x, map.ptr);
  Tensor y = Tensor::empty({map.out_rows, x.size(1)}, x.dtype(), x.device());
  AVEY_DISPATCH(op, x, map_rows, map.out_rows, x.size(1), map.ptr.data<int32_t>(), map.src.data<int32_t>(),
                x.data<T>(), y.data<T>());
  return y;
}

Tensor map_rows(const Tensor& x, const RowMaps& maps) {
  Tensor y = apply_map(x, maps.map);
  record(y, "map_rows", {x}, [t = maps.transposed](const Tensor& g) -> std::vector<Tensor> { return {apply_map(g, t)}; });
  return y;
}

// y = x in another dtype; the gradient is cast back: dL/dx = cast(dL/dy, x's dtype).
// Casting to i32 is not differentiable and records nothing.
Tensor cast(const Tensor& x, DType dtype) {
  Tensor y = x.dtype() == dtype ? x.view(0, x.shape()) : x.to(dtype);  // a fresh handle either way
  if (!is_floating(dtype)) return y;
  DType from = x.dtype();
  record(y, "cast", {x}, [from](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; });
  return y;
}

}  // namespace engine
