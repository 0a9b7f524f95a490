// Row-wise normalisations: softmax, RMSNorm, LayerNorm, L2 normalisation. One row per
// iteration, rows spread over OpenMP threads. Gradients of the per-column parameters (gain,
// bias) are summed over rows in fixed blocks of rows and then over the blocks in order
// (column_sums.h), so the result does not depend on the number of threads (no atomics).
// The math of each backward is derived in engine/ops_norm.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/column_sums.h"
#include "kernels/instantiate.h"
#include "kernels/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

// ---------------------------------------------------------------- softmax

template <class T> void softmax_rows(int64_t rows, int64_t cols, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = -INFINITY;
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, xr[c]);
    T s = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      yr[c] = std::exp(xr[c] - m);  // <= 1: no overflow
      s += yr[c];
    }
    const T inv = T(1) / s;
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

template <class T> void softmax_rows_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = gy + r * cols;
    T* out = gx + r * cols;
    T dot = T(0);
    for (int64_t c = 0; c < cols; ++c) dot += yr[c] * gr[c];
    for (int64_t c = 0; c < cols; ++c) out[c] = yr[c] * (gr[c] - dot);
  }
}

// ---------------------------------------------------------------- RMSNorm

template <class T> void rmsnorm(int64_t rows, int64_t cols, const T* x, const T* g, double eps, T* y, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T ss = T(0);
    for (int64_t c = 0; c < cols; ++c) ss += xr[c] * xr[c];
    const T k = T(1) / std::sqrt(ss / T(cols) + T(eps));
    rstd[r] = k;
    for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] * k * g[c];
  }
}

template <class T> void rmsnorm_backward(const RmsNormBackward<T>& a) {
  const int64_t cols = a.cols;
  rows_with_column_sums<T>(a.rows, cols, {a.gg, a.gres_sum}, [&](int64_t r, T* p) {
    T* pgg = p;
    T* pgres = p + cols;
    const T* xr = a.x + r * cols;
    const T* gr = a.gy + r * cols;
    const T* res = a.gres ? a.gres + r * cols : nullptr;
    T* out = a.gx + r * cols;
    const T k = a.rstd[r];
    T dot = T(0);
    for (int64_t c = 0; c < cols; ++c) dot += xr[c] * a.g[c] * gr[c];
    const T m = dot / T(cols) * k * k;  // rstd^2 * mean(x g gy)
    for (int64_t c = 0; c < cols; ++c) {
      out[c] = k * (a.g[c] * gr[c] - xr[c] * m);
      pgg[c] += gr[c] * xr[c] * k;
      if (res) {
        out[c] += res[c];
        pgres[c] += res[c];
      }
    }
  });
}

// ---------------------------------------------------------------- LayerNorm

template <class T>
void layernorm(int64_t rows, int64_t cols, const T* x, const T* g, const T* b, double eps, T* y, T* mean, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mu = T(0);
    for (int64_t c = 0; c < cols; ++c) mu += xr[c];
    mu /= T(cols);
    T var = T(0);  // two passes: no cancellation in E[x^2] - E[x]^2
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    const T k = T(1) / std::sqrt(var / T(cols) + T(eps));
    mean[r] = mu;
    rstd[r] = k;
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * k * g[c] + (b ? b[c] : T(0));
  }
}

template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                        const T* gy, T* gx, T* gg, T* gb) {
  rows_with_column_sums<T>(rows, cols, {gg, gb}, [&](int64_t r, T* p) {
    T* pgg = p;
    T* pgb = p + cols;
    const T* xr = x + r * cols;
    const T* gr = gy + r * cols;
    T* out = gx + r * cols;
    const T mu = mean[r], k = rstd[r];
    T a = T(0), bsum = T(0);  // sums of gxh and gxh * xh, with gxh = gy g and xh = (x - mu) rstd
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (xr[c] - mu) * k, gxh = gr[c] * g[c];
      a += gxh;
      bsum += gxh * xh;
      pgg[c] += gr[c] * xh;
      pgb[c] += gr[c];
    }
    a /= T(cols);
    bsum /= T(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const T xh = (xr[c] - mu) * k;
      out[c] = k * (gr[c] * g[c] - a - xh * bsum);
    }
  });
}

// ---------------------------------------------------------------- L2 normalisation

template <class T> void l2norm_rows(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T ss = T(0);
    for (int64_t c = 0; c < cols; ++c) ss += xr[c] * xr[c];
    const T d = l2_denominator(mode, ss, T(eps)), inv = l2_inverse(d);
    denom[r] = d;
    for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] * inv;
  }
}

template <class T> void l2norm_rows_backward(const L2NormBackward<T>& a) {
  const int64_t cols = a.cols;
  std::vector<T> summed;  // a thread's sums of the mapped rows of gy and extra
#pragma omp parallel for schedule(static) if (a.rows * cols > 32768) firstprivate(summed)
  for (int64_t r = 0; r < a.rows; ++r) {
    const T* xr = a.x + r * cols;
    T* out = a.gx + r * cols;
    // the row's gradient G: gy's row, or the sum of the rows the map gives (read in place when
    // the map gives one row); E likewise from extra
    const T* gr = a.gy + r * cols;
    const T* er = a.extra ? a.extra + r * cols : nullptr;
    if (a.ptr && a.ptr[r + 1] - a.ptr[r] == 1) {
      gr = a.gy + int64_t(a.src[a.ptr[r]]) * cols;
      if (a.extra) er = a.extra + int64_t(a.src[a.ptr[r]]) * cols;
    } else if (a.ptr) {
      summed.assign(size_t(2 * cols), T(0));
      for (int32_t k = a.ptr[r]; k < a.ptr[r + 1]; ++k)
        for (int64_t c = 0; c < cols; ++c) {
          summed[size_t(c)] += a.gy[int64_t(a.src[k]) * cols + c];
          if (a.extra) summed[size_t(cols + c)] += a.extra[int64_t(a.src[k]) * cols + c];
        }
      gr = summed.data();
      if (a.extra) er = summed.data() + cols;
    }
    T ss = T(0), dot = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      ss += xr[c] * xr[c];
      dot += xr[c] * gr[c];
    }
    const T norm = std::sqrt(ss), d = a.denom ? a.denom[r] : l2_denominator(a.mode, ss, T(a.eps));
    const T inv = l2_inverse(d);
    // gx = gy / d - x (x . gy) k, with k = d'(s) / (s d^2): see engine/ops_norm.cpp.
    T k = T(0);
    switch (a.mode) {
      case NormEps::Outside: k = norm > T(0) ? inv * inv / norm : T(0); break;
      case NormEps::Inside: k = inv * inv * inv; break;
      case NormEps::Max: k = norm > T(a.eps) ? inv * inv * inv : T(0); break;
    }
    for (int64_t c = 0; c < cols; ++c) out[c] = gr[c] * inv - xr[c] * dot * k + (er ? er[c] : T(0));
  }
}

// ---------------------------------------------------------------- L1 normalisation

template <class T> void l1norm_rows(int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T s = T(0);
    for (int64_t c = 0; c < cols; ++c) s += std::abs(xr[c]);
    const T d = std::max(s, T(eps));
    denom[r] = d;
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = xr[c] / d;
  }
}

template <class T>
void l1norm_rows_backward(int64_t rows, int64_t cols, const T* x, double eps, const T* gy, T* gx) {
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* gr = gy + r * cols;
    T s = T(0), dot = T(0);
    for (int64_t c = 0; c < cols; ++c) s += std::abs(xr[c]), dot += gr[c] * xr[c];
    const T d = std::max(s, T(eps)), k = s > T(eps) ? dot / (d * d) : T(0);
    for (int64_t c = 0; c < cols; ++c) {
      const T sign = xr[c] > T(0) ? T(1) : xr[c] < T(0) ? T(-1) : T(0);
      gx[r * cols + c] = gr[c] / d - sign * k;
    }
  }
}

AVEY_INSTANTIATE_CPU(l1norm_rows)
AVEY_INSTANTIATE_CPU(l1norm_rows_backward)
AVEY_INSTANTIATE_CPU(softmax_rows)
AVEY_INSTANTIATE_CPU(softmax_rows_backward)
AVEY_INSTANTIATE_CPU(rmsnorm)
AVEY_INSTANTIATE_CPU(rmsnorm_backward)
AVEY_INSTANTIATE_CPU(layernorm)
AVEY_INSTANTIATE_CPU(layernorm_backward)
AVEY_INSTANTIATE_CPU(l2norm_rows)
AVEY_INSTANTIATE_CPU(l2norm_rows_backward)

}  // namespace kernels::cpu
