// Cross-entropy with a fused log-softmax, one row (token) per iteration.
//   loss_r = logsumexp(z_r) - z_r[t_r],  logsumexp(z) = m + log sum_v exp(z_v - m), m = max z
//   dloss_r / dz_r = softmax(z_r) - onehot(t_r) = exp(z_r - lse_r) - onehot(t_r)
// Rows whose target is the ignore index contribute 0 and receive a zero gradient. The passes over
// a row are Eigen array expressions (a vectorised exp: the tied head's rows are 50,304 wide).
#include <Eigen/Core>

#include <algorithm>
#include <cmath>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T>
using Row = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

template <class T>
void cross_entropy(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                   T* lse) {
#pragma omp parallel for schedule(static) if (rows * vocab > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    if (target[r] == ignore) {
      loss[r] = T(0);
      lse[r] = T(0);
      continue;
    }
    const Row<T> z(logits + r * vocab, vocab);
    const T m = z.maxCoeff();
    const T log_s = std::log((z - m).exp().sum());
    lse[r] = m + log_s;
    loss[r] = (m - z[target[r]]) + log_s;  // not lse - z[t]: keeps the digits when |z| is large
  }
}

template <class T>
void cross_entropy_backward(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                            const T* lse, const T* gloss, double scale, T* glogits) {
  const T k = gloss[0] * T(scale);
#pragma omp parallel for schedule(static) if (rows * vocab > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    T* g = glogits + r * vocab;
    if (target[r] == ignore) {
      std::fill(g, g + vocab, T(0));
      continue;
    }
    Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>(g, vocab) = k * (Row<T>(logits + r * vocab, vocab) - lse[r]).exp();
    g[target[r]] -= k;
  }
}

AVEY_INSTANTIATE_CPU(cross_entropy)
AVEY_INSTANTIATE_CPU(cross_entropy_backward)

}  // namespace kernels::cpu
