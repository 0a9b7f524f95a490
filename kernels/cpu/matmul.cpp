// Matrix products through Eigen (which blocks for the cache and vectorises), threaded here: a
// product is cut into tasks (tiles of C's rows and columns, and for a long inner dimension parts
// of it) by a rule of the shapes alone, never of the thread count, and OpenMP runs the tasks,
// each one single-threaded Eigen product. Eigen's own threading is off (EIGEN_DONT_PARALLELIZE in
// kernels/CMakeLists.txt): it picks its cache blocks by the thread count, and with them the order
// in which each element's terms are summed. Here every element of C is summed in the same order
// whatever the number of threads.
#include <Eigen/Core>

#include <algorithm>
#include <vector>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using Map = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

namespace {

// One product, C = alpha op(A) op(B) + beta C, op(A) M x K and op(B) K x N; lda, ldb, ldc are the
// row lengths of the row-major buffers.
template <class T>
void one_product(const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, int64_t M, int64_t N,
                 int64_t K, bool ta, bool tb, T alpha, T beta) {
  // A stored as M x K (or K x M when transposed); likewise B.
  ConstMap<T> a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  ConstMap<T> b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  Map<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (!ta && !tb) c.noalias() += alpha * a * b;
  else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
  else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

// How a batch of m x n x k products is cut: tm x tn tiles of C, the inner dimension in kp parts.
struct Tiling {
  int64_t tm = 1, tn = 1, kp = 1;
};

// Enough tasks to keep 16 cores busy with a few each, none below ~2 MFLOP (Eigen's packing and
// the task's start then stay small beside its arithmetic). Each cut is the one that adds the
// least memory traffic: another row of tiles packs B's k x n once more (k n), another column of
// tiles A's (k m); another part of k writes and reads one more m x n partial sum (2 m n; only
// for a single product, whose tiles are otherwise few when m and n are small).
Tiling tiling(int64_t batch, int64_t m, int64_t n, int64_t k) {
  constexpr int64_t kTasks = 64, kMinTaskWork = 1 << 20, kMinSide = 32, kMinDepth = 256;
  Tiling t;
  auto tasks = [&] { return batch * t.tm * t.tn * t.kp; };
  while (tasks() < kTasks && batch * m * n * k / (tasks() * 2) >= kMinTaskWork) {
    const bool cut_m = m / (2 * t.tm) >= kMinSide, cut_n = n / (2 * t.tn) >= kMinSide;
    const bool cut_k = batch == 1 && k / (2 * t.kp) >= kMinDepth;
    const int64_t cost_m = cut_m ? k * n * t.tn : INT64_MAX, cost_n = cut_n ? k * m * t.tm : INT64_MAX;
    const int64_t cost_k = cut_k ? 2 * m * n * t.kp : INT64_MAX;
    const int64_t best = std::min({cost_m, cost_n, cost_k});
    if (best == INT64_MAX) break;
    if (best == cost_m) t.tm *= 2;
    else if (best == cost_n) t.tn *= 2;
    else t.kp *= 2;
  }
  return t;
}

// A triangular product's tiles of rows (Gemm::triangle): its columns, or its inner dimension,
// stop at the tile's last row (or start at its first), so shorter tiles leave out more of the
// zero half: rows in 64s leave (1 - 1/tiles) / 2 of the whole product out, 44% at C 512.
constexpr int64_t kTriangleRows = 64;

// Rows [i * step, min(size, (i + 1) * step)) of a dimension cut into `parts` pieces.
struct Range {
  int64_t begin, size;
};
Range piece(int64_t size, int64_t parts, int64_t i) {
  const int64_t step = (size + parts - 1) / parts, begin = std::min(size, i * step);
  return {begin, std::min(size, begin + step) - begin};
}

}  // namespace

template <class T> void matmul(const Gemm<T>& g) {
  const int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  Tiling t = tiling(g.batch, g.m, g.n, g.k);
  if (g.triangle != Triangle::None) {  // short tiles of rows: each reads no more than its rows need
    t.tm = std::max(t.tm, (g.m + kTriangleRows - 1) / kTriangleRows);
    t.kp = 1;
  }
  // A's rows r..: element (r, kk) of op(A) sits at r * lda + kk, or kk * lda + r when transposed.
  auto a_at = [&](int64_t b, int64_t r, int64_t kk) { return g.a + b * g.stride_a + (g.ta ? kk * lda + r : r * lda + kk); };
  auto b_at = [&](int64_t b, int64_t kk, int64_t c) { return g.b + b * g.stride_b + (g.tb ? c * ldb + kk : kk * ldb + c); };
  const int64_t tiles = t.tm * t.tn, tasks = g.batch * tiles * t.kp;
  // Parts of k go to partial sums [kp, m, n], added in order below; without parts, C directly.
  // The partial sums live in a buffer this thread keeps (no fresh pages to fault in every call).
  thread_local std::vector<T> scratch;
  if (t.kp > 1 && scratch.size() < size_t(t.kp * g.m * g.n)) scratch.resize(size_t(t.kp * g.m * g.n));
  T* const partial = t.kp > 1 ? scratch.data() : nullptr;
#pragma omp parallel for schedule(dynamic) if (tasks > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / (tiles * t.kp), p = task / tiles % t.kp, tile = task % tiles;
    const Range rm = piece(g.m, t.tm, tile / t.tn);
    Range rn = piece(g.n, t.tn, tile % t.tn), rk = piece(g.k, t.kp, p);
    T* c = partial ? partial + (p * g.m + rm.begin) * g.n : g.c + b * g.stride_c + rm.begin * g.n;
    const int64_t row_end = rm.begin + rm.size;
    if (g.triangle == Triangle::LowerC && rn.begin + rn.size > row_end) {  // columns past the tile's last row: zeros
      const int64_t z = std::max(rn.begin, row_end);
      for (int64_t r = 0; r < rm.size; ++r) std::fill(c + r * g.n + z, c + r * g.n + rn.begin + rn.size, T(0));
      rn.size = z - rn.begin;
    }
    if (g.triangle == Triangle::LowerA) rk = {0, std::min(g.k, row_end)};
    if (g.triangle == Triangle::UpperA) rk = {rm.begin, g.k - rm.begin};
    if (rm.size == 0 || rn.size == 0) continue;
    one_product(a_at(b, rm.begin, rk.begin), lda, b_at(b, rk.begin, rn.begin), ldb, c + rn.begin, g.n, rm.size, rn.size,
                rk.size, g.ta, g.tb, partial ? T(1) : T(g.alpha), partial ? T(0) : T(g.beta));
  }
  if (!partial) return;
  const int64_t mn = g.m * g.n;
  const T alpha = T(g.alpha), beta = T(g.beta);
#pragma omp parallel for schedule(static) if (mn > 65536)
  for (int64_t i = 0; i < mn; ++i) {
    T s = partial[size_t(i)];
    for (int64_t p = 1; p < t.kp; ++p) s += partial[size_t(p * mn + i)];
    g.c[i] = beta == T(0) ? alpha * s : alpha * s + beta * g.c[i];
  }
}

template <class T> void linear_residual(const LinearResidual<T>& a) {
#pragma omp parallel for schedule(static) if (a.rows * a.cols > 65536)
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t c = 0; c < a.cols; ++c) a.out[r * a.cols + c] = a.residual[r * a.cols + c] + a.bias[c];
  matmul<T>({.a = a.x, .b = a.w, .c = a.out, .m = a.rows, .n = a.cols, .k = a.in, .tb = true, .beta = 1.0});
}

template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (batch * rows * cols > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    Map<T>(y + b * rows * cols, cols, rows, Eigen::OuterStride<>(rows)) =
        ConstMap<T>(x + b * rows * cols, rows, cols, Eigen::OuterStride<>(cols)).transpose();
  }
}

AVEY_INSTANTIATE_CPU(matmul)
AVEY_INSTANTIATE_CPU(linear_residual)
AVEY_INSTANTIATE_CPU(transpose)

}  // namespace kernels::cpu
