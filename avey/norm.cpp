#include "avey/norm.h"

namespace avey {

using namespace engine;

Tensor rms_norm_composed(const Tensor& x, const Tensor& gain, double eps) {
  Tensor r = rsqrt(add_scalar(row_means(square(x)), eps));  // [..., 1]
  return mul(mul(x, r), gain);
}

}  // namespace avey
