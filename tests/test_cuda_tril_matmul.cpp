// The contextualizer's triangular products (kernels/cuda/tril_matmul.cu) against an f64 host
// reference, on fresh random bf16 inputs, for a few sizes (odd tile counts included: C = 384
// has 3 tile rows, N = 384 three column tiles).
//
// Only what each function defines is compared: the lower 128 x 128 tiles of cos, a and G (the
// tiles above are checked to be left as they were), all of Y and P. Products: the largest error
// over the largest reference magnitude, and the normwise error, both under 1e-2 (bf16 outputs),
// no NaN. The fused element-wise outputs must equal, bit for bit, the unfused composition of the
// kernel's own rounded outputs: a == round(cos W), P == round(Y M). A second run of tril_gram
// gives the same bits (no atomics, fixed order).
//
// Skipped without a GPU; without a CUDA build there is one test that says so.
#include "tests/testing.h"

#ifndef AVEY_HAVE_CUDA

TEST_CASE("cuda tril_matmul: GPU tests (no CUDA build)") {
  MESSAGE("no CUDA build: the tril_matmul tests were not compiled");
}

#else

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/bf16.h"
#include "avey/kernels/cuda/tril_matmul.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda_testing.h"

using kernels::bf16;
using kernels::to_bf16;
using kernels::to_float;
using testing::kNoGpu;
namespace tri = avey::kernels::cuda;

namespace {

constexpr int64_t kTile = 128;

// A device copy of a host vector (or an allocation of n elements filled with `fill` bits).
struct Device {
  explicit Device(const std::vector<bf16>& host) : n(host.size()), p(kernels::cuda::allocate(n * 2)) {
    kernels::cuda::copy_to_device(p, host.data(), n * 2);
  }
  Device(size_t count, uint16_t fill) : Device(std::vector<bf16>(count, bf16{fill})) {}
  ~Device() { kernels::cuda::release(p, n * 2); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  bf16* get() const { return static_cast<bf16*>(p); }
  std::vector<bf16> host() const {
    std::vector<bf16> v(n);
    kernels::cuda::copy_to_host(v.data(), p, n * 2);
    return v;
  }
  size_t n;
  void* p;
};

std::vector<bf16> random_bf16(size_t n, engine::Rng& rng, double scale) {
  std::vector<bf16> v(n);
  for (bf16& x : v) x = to_bf16(float(rng.normal() * scale));
  return v;
}
// [batch, C, C], zero above the diagonal.
std::vector<bf16> random_lower(int64_t batch, int64_t C, engine::Rng& rng, double scale) {
  std::vector<bf16> v(size_t(batch * C * C));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t j = 0; j < C; ++j)
        v[size_t((b * C + i) * C + j)] = j <= i ? to_bf16(float(rng.normal() * scale)) : bf16{};
  return v;
}

bool in_lower_tiles(int64_t i, int64_t j) { return j / kTile <= i / kTile; }

// Largest error over largest magnitude, and normwise error, of got against ref on the elements
// `use` selects ([batch, rows, cols]); NaN makes both infinite.
struct Error {
  double max_rel = 0, norm_rel = 0;
};
template <class Use>
Error error(const std::vector<bf16>& got, const std::vector<double>& ref, int64_t batch, int64_t rows, int64_t cols,
            Use use) {
  double dmax = 0, rmax = 0, d2 = 0, r2 = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        if (!use(i, j)) continue;
        const size_t k = size_t((b * rows + i) * cols + j);
        const double g = to_float(got[k]), r = ref[k];
        if (std::isnan(g)) return {INFINITY, INFINITY};
        dmax = std::max(dmax, std::abs(g - r)), rmax = std::max(rmax, std::abs(r));
        d2 += (g - r) * (g - r), r2 += r * r;
      }
  return {dmax / rmax, std::sqrt(d2 / r2)};
}

void check_error(const char* what, Error e) {
  MESSAGE(std::string(what) << ": max error / max |ref| " << e.max_rel << ", normwise " << e.norm_rel);
  CHECK(e.max_rel < 1e-2);
  CHECK(e.norm_rel < 1e-2);
}

// Elements (selected by `use`) where p != round(y m) bit for bit; m repeats every m_period elements.
template <class Use>
int64_t product_mismatches(const std::vector<bf16>& y, const std::vector<bf16>& m, const std::vector<bf16>& p,
                           int64_t batch, int64_t rows, int64_t cols, size_t m_period, Use use) {
  int64_t bad = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const size_t k = size_t((b * rows + i) * cols + j);
        if (use(i, j) && p[k].bits != to_bf16(to_float(y[k]) * to_float(m[k % m_period])).bits) ++bad;
      }
  return bad;
}

// G[b] = X[b] Y[b]^T in f64 on the lower tiles (0 elsewhere); X, Y [batch, C, K].
std::vector<double> ref_nt(const std::vector<bf16>& X, const std::vector<bf16>& Y, int64_t batch, int64_t C,
                           int64_t K) {
  std::vector<double> G(size_t(batch * C * C), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t j = 0; j < C; ++j) {
        if (!in_lower_tiles(i, j)) continue;
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += double(to_float(X[size_t((b * C + i) * K + k)])) * to_float(Y[size_t((b * C + j) * K + k)]);
        G[size_t((b * C + i) * C + j)] = s;
      }
  return G;
}

// out[b] = op(L[b]) B[b] in f64, op(L) = L or L^T; L [batch, C, C], B [batch, C, N].
std::vector<double> ref_mm(const std::vector<bf16>& L, bool transpose, const std::vector<bf16>& B, int64_t batch,
                           int64_t C, int64_t N) {
  std::vector<double> out(size_t(batch * C * N));
  std::vector<double> row(static_cast<size_t>(N));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < C; ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t k = 0; k < C; ++k) {
        const double l = to_float(L[size_t(transpose ? (b * C + k) * C + i : (b * C + i) * C + k)]);
        if (l == 0) continue;
        for (int64_t n = 0; n < N; ++n) row[size_t(n)] += l * to_float(B[size_t((b * C + k) * N + n)]);
      }
      for (int64_t n = 0; n < N; ++n) out[size_t((b * C + i) * N + n)] = row[size_t(n)];
    }
  return out;
}

}  // namespace

TEST_CASE("cuda: tril_matmul products match an f64 reference on the triangle" * doctest::skip(kNoGpu)) {
  if (!tri::tril_matmul_available()) {  // asked here, not at static initialisation: kernels register then
    MESSAGE("this build has no tril_matmul code for the GPU (below sm_80): skipped");
    return;
  }
  engine::Rng rng(20251123);
  struct Size {
    int64_t batch, C, K;  // K: the inner width of tril_gram / tril_nt, and N of the other two
  };
  for (const Size& z : {Size{2, 512, 768}, Size{3, 256, 128}, Size{2, 384, 384}}) {
    const int64_t batch = z.batch, C = z.C, K = z.K;
    CAPTURE(batch);
    CAPTURE(C);
    CAPTURE(K);
    const size_t nCK = size_t(batch * C * K), nCC = size_t(batch * C * C);
    const auto lower = [](int64_t i, int64_t j) { return in_lower_tiles(i, j); };
    const auto all = [](int64_t, int64_t) { return true; };

    // cos = A A^T, a = cos (.) W; the tiles above the diagonal keep their NaN fill.
    const auto A = random_bf16(nCK, rng, 1.0), W = random_lower(1, C, rng, 1.0);
    Device dA(A), dW(W), dcos(nCC, 0xFFFF), da(nCC, 0xFFFF);
    tri::tril_gram(batch, C, K, dA.get(), {}, dW.get(), dcos.get(), da.get());
    const auto cos = dcos.host(), a = da.host();
    check_error("tril_gram cos", error(cos, ref_nt(A, A, batch, C, K), batch, C, C, lower));
    CHECK(product_mismatches(cos, W, a, batch, C, C, size_t(C * C), lower) == 0);
    int64_t written_above = 0;
    for (size_t k = 0; k < nCC; ++k) {
      const int64_t i = int64_t(k / size_t(C)) % C, j = int64_t(k % size_t(C));
      if (!in_lower_tiles(i, j) && (cos[k].bits != 0xFFFF || a[k].bits != 0xFFFF)) ++written_above;
    }
    CHECK(written_above == 0);
    tri::tril_gram(batch, C, K, dA.get(), {}, dW.get(), dcos.get(), da.get());
    CHECK(std::memcmp(dcos.host().data(), cos.data(), nCC * 2) == 0);

    // G = X Y^T on the lower tiles.
    const auto X = random_bf16(nCK, rng, 1.0), Y = random_bf16(nCK, rng, 1.0);
    Device dX(X), dY(Y), dG(nCC, 0xFFFF);
    tri::tril_nt(batch, C, K, dX.get(), {}, dY.get(), {}, dG.get());
    check_error("tril_nt", error(dG.host(), ref_nt(X, Y, batch, C, K), batch, C, C, lower));

    // Y = L B and P = Y (.) M, P into the first N columns of a wider matrix (rows ldp apart: the
    // columns after N keep their fill); the same Y without the product.
    const int64_t N = K, ldp = N + 72;
    const auto L = random_lower(batch, C, rng, 1.0), B = random_bf16(nCK, rng, 1.0), M = random_bf16(nCK, rng, 1.0);
    Device dL(L), dB(B), dM(M), dYc(nCK, 0xFFFF), dP(size_t(batch * C * ldp), 0xFFFF), dY2(nCK, 0xFFFF);
    tri::tril_lower_mm(batch, C, N, dL.get(), dB.get(), {}, dYc.get(), dM.get(), dP.get(), ldp, {});
    tri::tril_lower_mm(batch, C, N, dL.get(), dB.get(), {}, dY2.get(), nullptr, nullptr, N, {});
    const auto Yc = dYc.host(), wide = dP.host();
    check_error("tril_lower_mm", error(Yc, ref_mm(L, false, B, batch, C, N), batch, C, N, all));
    std::vector<bf16> P(nCK);
    int64_t written_past_n = 0;
    for (size_t r = 0; r < size_t(batch * C); ++r)
      for (size_t j = 0; j < size_t(ldp); ++j) {
        if (j < size_t(N)) P[r * size_t(N) + j] = wide[r * size_t(ldp) + j];
        else if (wide[r * size_t(ldp) + j].bits != 0xFFFF) ++written_past_n;
      }
    CHECK(product_mismatches(Yc, M, P, batch, C, N, nCK, all) == 0);
    CHECK(written_past_n == 0);
    CHECK(std::memcmp(dY2.host().data(), Yc.data(), nCK * 2) == 0);

    // Y = L^T B, over a buffer of random values (every element is overwritten).
    const auto Y0 = random_bf16(nCK, rng, 4.0);
    Device dut(Y0);
    tri::tril_upper_t_mm(batch, C, N, dL.get(), dB.get(), {}, dut.get());
    check_error("tril_upper_t_mm", error(dut.host(), ref_mm(L, true, B, batch, C, N), batch, C, N, all));
  }
}

TEST_CASE("cuda: tril_matmul refuses sizes it cannot tile" * doctest::skip(kNoGpu)) {
  Device x(size_t(2 * 256 * 256), 0);
  CHECK_THROWS(tri::tril_nt(1, 200, 64, x.get(), {}, x.get(), {}, x.get()));  // C not a multiple of 128
  CHECK_THROWS(tri::tril_nt(1, 256, 96, x.get(), {}, x.get(), {}, x.get()));  // K not a multiple of 64
  CHECK_THROWS(tri::tril_lower_mm(1, 256, 192, x.get(), x.get(), {}, x.get(), nullptr, nullptr, 192, {}));  // N
  CHECK_THROWS(tri::tril_lower_mm(1, 256, 128, x.get(), x.get(), {}, x.get(), x.get(), nullptr, 128, {}));  // M without P
  CHECK_THROWS(tri::tril_lower_mm(1, 128, 128, x.get(), x.get(), {}, x.get(), x.get(), x.get(), 132, {}));  // ldp
  CHECK_THROWS(tri::tril_nt(1, 256, 64, x.get() + 1, {}, x.get(), {}, x.get()));  // not 16-byte aligned
}

#endif
