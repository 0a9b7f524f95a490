// The contextualizer's triangular products on the GPU (avey/kernels/cuda/tril_matmul.cu says how
// they work): bf16, fp32 accumulation, only the lower 128 x 128 tiles of a [C, C] result, or only
// the triangle's K range. C and N multiples of 128, K a positive multiple of 64, pointers 16-byte
// aligned. Their fast path (wgmma) needs an sm_90a build (CMAKE_CUDA_ARCHITECTURES=90a); sm_80
// to sm_90 get a slower mma.sync one. GPU only: avey/contextualizer_ops.cpp uses them where
// triangle_kernels_apply() says so, and cuBLAS's full products elsewhere.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace avey::kernels::cuda {

using ::kernels::bf16;

// The running code has one of the two paths (built for sm_80 or later).
bool tril_matmul_available();

// The packed contexts' row map (avey/packing.h) as the triangle kernels apply it to an operand's
// rows, or a result's: context b's row i is packed row i when i < pad[b] (a shared padding row)
// and offset[b] + i - pad[b] otherwise. With owner >= 0 the padding rows map only in context
// `owner` and are -1 elsewhere: read as zero rows, and not written. Default: no map (row b C + i).
struct PackedRows {
  const int32_t* pad = nullptr;  // [batch]
  const int32_t* offset = nullptr;
  int owner = -1;
};

// cos = A A^T, a = cos (.) W (W [C, C] lower triangular, shared), tiles j <= i only; A [batch, C, K]
void tril_gram(int64_t batch, int64_t C, int64_t K, const bf16* A, PackedRows a_rows, const bf16* W, bf16* cos,
               bf16* a);
// G = X Y^T, tiles j <= i only; X, Y [batch, C, K]
void tril_nt(int64_t batch, int64_t C, int64_t K, const bf16* X, PackedRows x_rows, const bf16* Y,
             PackedRows y_rows, bf16* G);
// Y = L B (L [batch, C, C] lower triangular, B [batch, C, N]); P = Y (.) M when M, P are given,
// P's rows (batch entries stacked) ldp elements apart (a multiple of 8, >= N: P may be the first
// N columns of a wider matrix); out_rows maps the rows of Y, M and P
void tril_lower_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y,
                   const bf16* M, bf16* P, int64_t ldp, PackedRows out_rows);
// Y = L^T B (L lower triangular; Y, B [batch, C, N])
void tril_upper_t_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y);

}  // namespace avey::kernels::cuda
