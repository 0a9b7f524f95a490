// Triangle-aware batched bf16 matrix products for the Avey contextualizer: the four products of
// a block whose [C, C] matrix is lower triangular (or only read below the diagonal), computed
// on 128 x 128 output tiles that skip the upper triangle, with the element-wise step that
// follows each product fused into its epilogue. bf16 in and out, fp32 accumulation.
//
//   tril_gram            cos = A A^T, a = cos (.) W    lower tiles only             (forward: cos, a)
//   tril_nt              G = X Y^T                     lower tiles only             (backward: dA)
//   tril_lower_mm        Y = L B [, P = Y (.) M]       row tile i: k < 128 (i + 1)  (forward: Yc, c)
//   tril_upper_t_mm      Y = L^T B                     row tile i: k >= 128 i       (backward: dZ0)
//
// With T = C / 128 tile rows, a full square is T^2 tile products of length C; the triangle is
// T (T + 1) / 2 of them (the last two: every tile, with K ranges 1..T tiles long), 10 of 16 for
// C = 512.
//
// One kernel, four instantiations. D = op(A) op(B), D[m, n] = sum_k A'[m, k] B'[k, n]; each
// operand is stored either K-contiguous (A' as A[m][k], B' as B[n][k]: the rows of a row-major
// matrix) or MN-contiguous (A' as A[k][m], B' as B[k][n]).
//
// Work items: one tile row i (128 rows of D) times two neighbouring column tiles j, j + 1 (a
// single tile where the row has an odd count left: the diagonal tile of an even row for the
// triangle, the last column tile when N / 128 is odd), so each slice of A' feeds 256 columns.
// At Avey's sizes (C = 512, K or N 256..768) the products are bound by memory traffic (the
// operands through L2 and DRAM, and the outputs), not by the tensor cores (the mma.sync path
// below ran about as fast as wgmma with 128 x 128 items): a 128 x 256 item reads 24 KB of
// operands per 128 x 128 tile and 64-deep slice, a 128 x 128 one 32 KB. For the same reason
// skipping the upper triangle saves less time than flops: benchmarks/bench_tril_matmul.cu.
//
// A persistent grid, one block of 256 threads per multiprocessor, walks the items of all batch
// entries (batch-major, so an entry's operands are read from DRAM about once and then from L2);
// block c takes items c, 2G - 1 - c, 2G + c, 4G - 1 - c, ... (G blocks), so the heavy and the
// light items of the triangular K ranges alternate. The K slices of one item and of the next
// form one stream: cp.async copies 64-deep slices of A' (128 x 64) and B' (256 x 64) into
// shared memory kAhead slices ahead, across item boundaries, so the next item's first slices
// arrive while this one's epilogue runs (and the epilogue's extra input M is
// prefetched to L2 when the item starts). The tensor cores multiply each slice:
//   - built for sm_90a (CMAKE_CUDA_ARCHITECTURES=90a; wgmma exists only there): wgmma;
//     warpgroup w takes column tile w of the item, as two m64n128k16 products per 16 k (rows
//     0-63 and 64-127), operands read from shared memory through descriptors;
//   - any other target (plain sm_90 too): mma.sync m16n8k16 with ldmatrix (.trans for the
//     MN-contiguous operands); warp q of warpgroup w takes rows 64 (q / 2).., columns 128 w +
//     64 (q % 2)... Also fp32 sums in K order; slower (see the benchmark).
// Either way a thread holds 32 pieces of 16 x 8 in the m16n8 accumulator layout (rows g and
// g + 8, columns 2 t and 2 t + 1, g = lane / 4, t = lane % 4). The epilogue stages them,
// kEpiRows rows at a time, in fp32 through shared memory and writes whole rows with 16-byte
// accesses.
//
// Shared memory, in 16-byte chunks (8 bf16) and 1024-byte atoms of 8 rows x 128 bytes, chunk c
// of row r at chunk c ^ (r & 7) (the "128-byte swizzle" layout wgmma reads; it also keeps the 8
// rows an ldmatrix reads in 8 different bank groups):
//   K-contiguous slice: rows (m or n) x 64 k, row r at byte 128 r.
//   MN-contiguous slice: 64 rows (k) x (m or n), in 8 KB blocks of 64 columns: element (k, x) in
//   block x / 64, row k at byte 128 k of it.
//
// Row maps (the packed contexts of avey/packing.h, PackedRows in tril_matmul.h): an operand's rows,
// and a result's, may go through the map from context b's row i to a packed row: a shared
// padding row (i below the context's padding) or the context's own. It is two numbers a context
// (its padding and its first own row), read once per work item, not an index per row. A read of
// a row mapped to -1 gives a zero row (cp.async with source size 0 fills zeros); a result row
// mapped to -1 is not written. So Z0 and Zn are read where the enricher wrote them, each padding
// row by every context that holds it, and Yc and c land straight in the packed rows.
//
// Determinism: every output element is one thread's fp32 sum in a fixed K order (no split K, no
// atomics), and the item order is fixed by the sizes, so a run repeats bit for bit.
#include <cuda_bf16.h>

#include <algorithm>

#include "avey/kernels/cuda/tril_matmul.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#pragma nv_diag_suppress 177  // the helpers below go unused where the kernel's body is left out
#endif

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AVEY_TRIL_WGMMA 1
#else
#define AVEY_TRIL_WGMMA 0
#endif

namespace avey::kernels::cuda {

using namespace ::kernels::cuda;

namespace {

constexpr int kTile = 128;           // output tile side, and the triangle's granularity
constexpr int kSliceK = 64;          // K depth of one pipeline stage (128 bytes of bf16: one swizzled row)
constexpr int kStages = 4;           // slices in shared memory
constexpr int kAhead = kStages - 1;  // slices being copied while one is multiplied
constexpr int kBlockThreads = 256;   // two warpgroups
constexpr int kASliceBytes = kTile * kSliceK * 2;  // 16 KB
constexpr int kStageBytes = 3 * kASliceBytes;      // A' 128 x 64, B' up to 256 x 64
constexpr int kEpiRows = 32;                       // rows staged at a time
constexpr int kEpiStride = 2 * kTile + 8;          // fp32 staging row (padded: no bank conflicts)
constexpr int kSmemBytes = kStages * kStageBytes + kEpiRows * kEpiStride * 4 + 1024;  // + 1024: alignment
// 4 stages and 32 staged rows fill the 227 KB a block may have; against 3 and 64, tiny's four
// triangle kernels went 958 -> 944 us a step (the K-heavy ones gain, the short ones lose a little).
static_assert(kSmemBytes <= 227 * 1024, "more shared memory than a block may have");

// Which tiles a launch computes and over which K range (T = C / 128 tile rows).
enum class Span {
  Tril,    // tiles (i, j), j <= i, of a [C, C] result, full K
  KBelow,  // every tile of a [C, N] result, K in [0, 128 (i + 1)): A' lower triangular
  KAbove,  // every tile of a [C, N] result, K in [128 i, C): A' upper triangular
};
// What the epilogue does with the fp32 tile D.
enum class Epi {
  Store,         // Y = D
  StoreProduct,  // Y = D, P = Y (.) M (Y rounded to bf16 first, then the product rounded again)
};

struct Operand {
  const bf16* p;
  int64_t ld;          // row length in elements; batch entries stacked, C rows each
  PackedRows rows{};   // row map (see the header), or none
};

// One context's row map: row i -> packed row (or -1). Without a map: pad = 0, offset = b C.
struct ContextRows {
  int pad = 0, offset = 0;
  bool pad_rows = true;  // do the padding rows map (the owner, or no owner)?
  __device__ __forceinline__ int64_t operator()(int i) const {
    return i < pad ? (pad_rows ? i : -1) : int64_t(offset) + i - pad;
  }
};
__device__ __forceinline__ ContextRows context_rows(const PackedRows& m, int64_t b, int C) {
  if (!m.pad) return {0, int(b * C), true};
  return {m.pad[b], m.offset[b], m.owner < 0 || m.owner == b};
}

struct Sizes {
  int C, N, K;
  int per_batch;  // work items per batch entry
  int items;      // all of them
};

// Work items of one batch entry: for the triangle, row i has ceil((i + 1) / 2) of them and rows
// before it floor((i + 1)^2 / 4); otherwise every row has ceil((N / 128) / 2), longest K first.
template <Span S> int items_per_batch(int C, int N) {
  const int t = C / kTile;
  return S == Span::Tril ? (t + 1) * (t + 1) / 4 : t * ((N / kTile + 1) / 2);
}

struct Item {
  int64_t b;
  int m0, n0, width;  // rows m0.., columns n0.. (width column tiles: 1 or 2)
  int k0, slices;     // K from k0, in 64-deep slices
};

template <Span S> __device__ Item decode(int item, const Sizes& z) {
  Item it;
  it.b = item / z.per_batch;
  const int u = item % z.per_batch;
  int ti, tj, k_end = z.K;
  it.k0 = 0;
  if constexpr (S == Span::Tril) {
    ti = 0;
    while ((ti + 2) * (ti + 2) / 4 <= u) ++ti;
    tj = 2 * (u - (ti + 1) * (ti + 1) / 4);
    it.width = min(2, ti + 1 - tj);
  } else {
    const int tiles_n = z.N / kTile, pairs = (tiles_n + 1) / 2, r = u / pairs;
    tj = 2 * (u % pairs);
    it.width = min(2, tiles_n - tj);
    ti = S == Span::KBelow ? z.C / kTile - 1 - r : r;
    if (S == Span::KBelow)
      k_end = (ti + 1) * kTile;
    else
      it.k0 = ti * kTile;
  }
  it.m0 = ti * kTile, it.n0 = tj * kTile, it.slices = (k_end - it.k0) / kSliceK;
  return it;
}

// The n-th item of this block (see the header): blocks go forward through even rounds of G
// items and backward through odd ones. Past the end: >= z.items.
__device__ __forceinline__ int schedule(int n) {
  const int G = gridDim.x, c = blockIdx.x;
  return n % 2 == 0 ? n * G + c : (n + 1) * G - 1 - c;
}

// Byte offset of element (row, k) of a K-contiguous slice, and of (k, x) of an MN-contiguous one.
__device__ __forceinline__ uint32_t kcontig_offset(int row, int k) {
  return uint32_t(row * 128 + ((((k >> 3) ^ row) & 7) << 4) + (k & 7) * 2);
}
__device__ __forceinline__ uint32_t mncontig_offset(int k, int x) {
  return uint32_t((x >> 6) * 8192 + k * 128 + ((((x >> 3) ^ k) & 7) << 4) + (x & 7) * 2);
}

// `rows` (128 or 256: m or n) x one K slice, global -> shared: rows x 8 chunks of 16 bytes, one
// cp.async each, consecutive threads on consecutive chunks of a global row. The slice starts at
// the context's row r0 (through its map) and column c0: (m or n, k) of a K-contiguous operand,
// (k, m or n) of an MN-contiguous one.
template <bool KContig>
__device__ __forceinline__ void load_slice(uint32_t smem, const Operand& o, const ContextRows& map, int r0, int64_t c0,
                                           int rows) {
  const int shift = KContig ? 3 : (rows == 2 * kTile ? 5 : 4);  // log2 of the chunks in one global row
#pragma unroll
  for (int it = 0; it < 2 * kTile * 8 / kBlockThreads; ++it) {
    const int t = int(threadIdx.x) + it * kBlockThreads;
    if (t >= rows * 8) break;
    const int row = t >> shift, x = (t & ((1 << shift) - 1)) * 8;  // row: m/n or k; x: k or m/n
    const uint32_t dst = smem + (KContig ? kcontig_offset(row, x) : mncontig_offset(row, x));
    int64_t g = map(r0 + row);
    int bytes = 16;
    if (g < 0) g = 0, bytes = 0;  // a zero row
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(o.p + g * o.ld + c0 + x), "r"(bytes));
  }
}

#if AVEY_TRIL_WGMMA
// ---- sm_90a: wgmma.
// Matrix descriptor of a swizzled (128-byte) operand: start address, "leading" byte offset (for
// MN-contiguous operands: from one 64-column block to the next), "stride" byte offset (from one
// 8-row atom to the next: 1024), all in 16-byte units; layout type 1 (bits 62-63) = 128-byte swizzle.
__device__ __forceinline__ uint64_t descriptor(uint32_t addr, uint32_t lead, uint32_t stride) {
  return uint64_t((addr & 0x3ffff) >> 4) | uint64_t(lead >> 4) << 16 | uint64_t(stride >> 4) << 32 | uint64_t(1) << 62;
}

#define AVEY_ACC4(i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
// d (64 x 128, fp32) = a b (+ d when accumulate), a 64 x 16, b 16 x 128; TA / TB: 1 when the
// operand is MN-contiguous.
template <int TA, int TB>
__device__ __forceinline__ void wgmma_64x128x16(float (&d)[16][4], uint64_t a, uint64_t b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "%64, %65, p, 1, 1, %67, %68;\n}\n"
      : AVEY_ACC4(0), AVEY_ACC4(1), AVEY_ACC4(2), AVEY_ACC4(3), AVEY_ACC4(4), AVEY_ACC4(5), AVEY_ACC4(6), AVEY_ACC4(7),
        AVEY_ACC4(8), AVEY_ACC4(9), AVEY_ACC4(10), AVEY_ACC4(11), AVEY_ACC4(12), AVEY_ACC4(13), AVEY_ACC4(14),
        AVEY_ACC4(15)
      : "l"(a), "l"(b), "r"(int(accumulate)), "n"(TA), "n"(TB));
}
#undef AVEY_ACC4

// acc = (first ? 0 : acc) + this slice's product, for warpgroup w's column tile: piece h * 16 + p
// is rows 64 h + 16 (warp % 4).., columns 128 w + 8 p... Only wgmma writes the accumulators.
template <bool AK, bool BK>
__device__ __forceinline__ void multiply_slice(float (&acc)[2][16][4], uint32_t sa, uint32_t sb, bool first) {
  const int w = threadIdx.x >> 7;
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
  for (int kk = 0; kk < kSliceK; kk += 16) {
    const uint64_t db = BK ? descriptor(sb + kcontig_offset(kTile * w, kk), 16, 1024)
                           : descriptor(sb + mncontig_offset(kk, kTile * w), 8192, 1024);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint64_t da = AK ? descriptor(sa + kcontig_offset(64 * h, kk), 16, 1024)
                             : descriptor(sa + mncontig_offset(kk, 64 * h), 8192, 1024);
      wgmma_64x128x16<AK ? 0 : 1, BK ? 0 : 1>(acc[h], da, db, !(first && kk == 0));
    }
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
  for (int h = 0; h < 2; ++h)  // keep the compiler from touching the accumulators before the wait
#pragma unroll
    for (int p = 0; p < 16; ++p)
#pragma unroll
      for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(acc[h][p][e])::"memory");
}

__device__ __forceinline__ int piece_row(int h, int) { return 64 * h + 16 * int((threadIdx.x >> 5) & 3); }
__device__ __forceinline__ int piece_col(int, int p) { return kTile * int(threadIdx.x >> 7) + 8 * p; }

#else
// ---- other targets: mma.sync m16n8k16. Warp q of warpgroup w computes rows 64 (q / 2)..,
// columns 128 w + 64 (q % 2).. of the item: 4 x 8 pieces of 16 x 8, piece (h, p) the m16 piece
// 2 h + p / 8 and the n8 piece p % 8 of the warp's 64 x 64.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr, bool trans) {
  if (trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// The 16 x 16 piece at rows r0 (m or n), k0 of a slice, as the registers mma wants: lane l gives
// row i = l & 7 of 8 x 8 matrix j = l >> 3, in fragment order
//   A (m16 x k16):    j = 0: (m 0-7, k 0-7), 1: (m 8-15, k 0-7), 2: (m 0-7, k 8-15), 3: (m 8-15, k 8-15)
//   B (two n8 x k16): j = 0: (n 0-7, k 0-7), 1: (n 0-7, k 8-15), 2: (n 8-15, k 0-7), 3: (n 8-15, k 8-15)
// A K-contiguous slice is read as stored (matrix rows = m or n), an MN-contiguous one with .trans
// (matrix rows = k, each 8 consecutive m or n).
template <bool KContig, bool IsA>
__device__ __forceinline__ void load_frag(uint32_t (&r)[4], uint32_t smem, int r0, int k0) {
  const int lane = threadIdx.x & 31, j = lane >> 3, i = lane & 7;
  const int rsel = IsA ? j & 1 : j >> 1, ksel = IsA ? j >> 1 : j & 1;
  if (KContig)
    ldmatrix_x4(r, smem + kcontig_offset(r0 + rsel * 8 + i, k0 + ksel * 8), false);
  else
    ldmatrix_x4(r, smem + mncontig_offset(k0 + ksel * 8 + i, r0 + rsel * 8), true);
}

__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool AK, bool BK>
__device__ __forceinline__ void multiply_slice(float (&acc)[2][16][4], uint32_t sa, uint32_t sb, bool first) {
  const int q = (threadIdx.x >> 5) & 3, w = threadIdx.x >> 7;
  if (first)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int p = 0; p < 16; ++p) acc[h][p][0] = acc[h][p][1] = acc[h][p][2] = acc[h][p][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < kSliceK; kk += 16) {
    uint32_t fa[4][4], fb[4][4];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) load_frag<AK, true>(fa[mi], sa, 64 * (q >> 1) + 16 * mi, kk);
#pragma unroll
    for (int nj = 0; nj < 4; ++nj) load_frag<BK, false>(fb[nj], sb, kTile * w + 64 * (q & 1) + 16 * nj, kk);
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 8; ++ni)
        mma_16x8x16(acc[mi >> 1][(mi & 1) * 8 + ni], fa[mi], fb[ni >> 1][(ni & 1) * 2], fb[ni >> 1][(ni & 1) * 2 + 1]);
  }
}

__device__ __forceinline__ int piece_row(int h, int p) {
  return 64 * int((threadIdx.x >> 6) & 1) + 16 * (2 * h + (p >> 3));
}
__device__ __forceinline__ int piece_col(int, int p) {
  return kTile * int(threadIdx.x >> 7) + 64 * int((threadIdx.x >> 5) & 1) + 8 * (p & 7);
}
#endif

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// The persistent kernel (see the header). Y has ldy = N elements a row, batch entries stacked; M
// has Y's layout (or, shared_m, one [C, N] M for the whole batch, as W is); P has ldp elements a
// row, stacked. out_rows maps the rows of Y, P and a stacked M (or none).
template <bool AK, bool BK, Span S, Epi E>
__global__ void __launch_bounds__(kBlockThreads, 1)
    tril_mm_kernel(Sizes z, Operand A, Operand B, bf16* Y, const bf16* M, bool shared_m, bf16* P, int64_t ldp,
                   PackedRows out_rows) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // cp.async and bf16 mma need sm_80: tril_matmul_available() keeps callers away
#else
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = uint32_t(__cvta_generic_to_shared(smem_raw));
  const uint32_t smem = (raw + 1023) & ~1023u;  // atoms 1024-aligned
  float* staging = reinterpret_cast<float*>(smem_raw + (smem - raw) + kStages * kStageBytes);
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 7;
  const int64_t ldy = z.N;

  // The copy cursor: item number n (of this block), its decoded item, slice s of it.
  int load_n = 0, load_s = 0;
  Item load_it = decode<S>(schedule(0), z);
  bool load_more = schedule(0) < z.items;

  auto load_next = [&](int position) {
    if (load_more) {
      const uint32_t stage = smem + uint32_t((position % kStages) * kStageBytes);
      const int k = load_it.k0 + load_s * kSliceK;
      // the row maps: two cached loads a slice rather than registers held through the loop
      load_slice<AK>(stage, A, context_rows(A.rows, load_it.b, z.C), AK ? load_it.m0 : k, AK ? k : load_it.m0, kTile);
      load_slice<BK>(stage + kASliceBytes, B, context_rows(B.rows, load_it.b, z.C), BK ? load_it.n0 : k,
                     BK ? k : load_it.n0, kTile * load_it.width);
      if (++load_s == load_it.slices) {
        load_s = 0;
        const int next = schedule(++load_n);
        load_more = next < z.items;
        if (load_more) load_it = decode<S>(next, z);
      }
    }
    asm volatile("cp.async.commit_group;\n" ::);  // one group per position, empty past the end
  };
  for (int q = 0; q < kAhead; ++q) load_next(q);

  float acc[2][16][4];  // set by each item's first slice (slices >= 1: K > 0)
  int position = 0;     // slices multiplied so far, over all items
  for (int n = 0;; ++n) {
    const int item = schedule(n);
    if (item >= z.items) break;
    const Item it = decode<S>(item, z);
    // Where tile row r's results go (and a stacked M is read): -1, nowhere.
    const ContextRows out_map = context_rows(out_rows, it.b, z.C);
    auto out_row = [&](int r) -> int64_t { return out_map(it.m0 + r); };
    if constexpr (E == Epi::StoreProduct) {
      // The epilogue's extra input M towards L2 while the slices are multiplied:
      // one prefetch per 128-byte line, kTile rows of 2 width lines.
      const int lines = 2 * it.width;
      for (int l = tid; l < kTile * lines; l += kBlockThreads) {
        const int r = l / lines;
        const int64_t at = shared_m ? it.m0 + r : out_row(r);
        if (at >= 0)
          asm volatile("prefetch.global.L2 [%0];\n" ::"l"(M + at * ldy + it.n0 +
                                                            (l % lines) * 64));
      }
    }
    for (int s = 0; s < it.slices; ++s, ++position) {
      asm volatile("cp.async.wait_group %0;\n" ::"n"(kAhead - 1));
#if AVEY_TRIL_WGMMA
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // cp.async's writes, visible to wgmma
#endif
      __syncthreads();  // this slice is in; every warp is done with the previous one, whose stage is refilled now
      load_next(position + kAhead);
      const uint32_t stage = smem + uint32_t((position % kStages) * kStageBytes);
      if (w < it.width) multiply_slice<AK, BK>(acc, stage, stage + kASliceBytes, s == 0);
    }

    // Epilogue, kEpiRows rows at a time: the fp32 pieces into the staging rows, then
    // each thread takes 8 consecutive columns (32 threads a row of 256), 8 rows apart, with the
    // extra input M loaded before any store.
    const int col = (tid & 31) * 8;
    const bool active = col < kTile * it.width;
#pragma unroll
    for (int h = 0; h < kTile / kEpiRows; ++h) {
      __syncthreads();  // the staging rows are free
      if (w < it.width)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
#pragma unroll
          for (int p = 0; p < 16; ++p) {
            const int r = piece_row(hh, p) - kEpiRows * h;
            if (r < 0 || r >= kEpiRows) continue;  // another round's rows
#pragma unroll
            for (int g = 0; g < 2; ++g)
              *reinterpret_cast<float2*>(staging + (r + (lane >> 2) + 8 * g) * kEpiStride + piece_col(hh, p) +
                                         2 * (lane & 3)) = make_float2(acc[hh][p][2 * g], acc[hh][p][2 * g + 1]);
          }
      __syncthreads();
      constexpr int kPasses = kEpiRows * 32 / kBlockThreads;
      float extra[kPasses][8];
      // the result row of pass i (the map is two numbers: recomputed, not held in registers)
      auto orow = [&](int i) -> int64_t { return active ? out_row(kEpiRows * h + 8 * i + (tid >> 5)) : -1; };
      if constexpr (E == Epi::StoreProduct) {
#pragma unroll
        for (int i = 0; i < kPasses; ++i) {
          const int64_t o = orow(i);
          if (o >= 0)
            load_vec(M, (shared_m ? it.m0 + kEpiRows * h + 8 * i + (tid >> 5) : o) * ldy + it.n0 + col, extra[i]);
        }
      }
#pragma unroll
      for (int i = 0; i < kPasses; ++i) {
        const int64_t o = orow(i);
        if (o < 0) continue;
        const int r = 8 * i + (tid >> 5);
        const float4 lo = *reinterpret_cast<const float4*>(staging + r * kEpiStride + col);
        const float4 hi = *reinterpret_cast<const float4*>(staging + r * kEpiStride + col + 4);
        float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
        store_vec(Y, o * ldy + it.n0 + col, v);
        if constexpr (E == Epi::StoreProduct) {
#pragma unroll
          for (int e = 0; e < 8; ++e) v[e] = round_bf16(v[e]) * extra[i][e];
          store_vec(P, o * ldp + it.n0 + col, v);
        }
      }
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
#endif
}

// The architecture the running code was compiled for (PTX for an older one runs JIT-compiled).
__global__ void arch_probe(int* out) {
#ifdef __CUDA_ARCH__
  *out = __CUDA_ARCH__;
#endif
}

void require(bool ok, const char* fn, const char* what) {
  if (!ok) fail(fn, what, __FILE__, __LINE__);
}

// Checks the sizes and pointers every function shares, then launches the persistent grid: one
// block per multiprocessor (at most one per item).
template <bool AK, bool BK, Span S, Epi E>
void launch(const char* fn, int64_t batch, int64_t C, int64_t N, int64_t K, Operand A, Operand B, bf16* Y,
            const bf16* M, bool shared_m, bf16* P, int64_t ldp, PackedRows out_rows = {}) {
  require(C % kTile == 0 && N % kTile == 0, fn, "C (and N) must be multiples of 128");
  require(ldp >= N && ldp % 8 == 0, fn, "P's row length must be at least N and a multiple of 8");
  require(K > 0 && K % kSliceK == 0, fn, "K must be a positive multiple of 64");
  require(C * std::max({N, K, ldp}) < (int64_t(1) << 31), fn, "a matrix of 2^31 elements or more");
  for (const void* p : {static_cast<const void*>(A.p), static_cast<const void*>(B.p), static_cast<const void*>(Y),
                        static_cast<const void*>(M), static_cast<const void*>(P)})
    require(aligned16(p), fn, "pointers must be 16-byte aligned");
  if (batch == 0 || C == 0 || N == 0) return;
  const int64_t per_batch = items_per_batch<S>(int(C), int(N)), items = per_batch * batch;
  require(items < (int64_t(1) << 30), fn, "too many tiles");
  static const int multiprocessors = [] {  // once per instantiation: the SM count, > 48 KB of shared memory
    int device = 0, count = 0;
    AVEY_CUDA_CHECK(cudaGetDevice(&device));
    AVEY_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    AVEY_CUDA_CHECK(
        cudaFuncSetAttribute(tril_mm_kernel<AK, BK, S, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    return count;
  }();
  const Sizes z{int(C), int(N), int(K), int(per_batch), int(items)};
  tril_mm_kernel<AK, BK, S, E>
      <<<unsigned(std::min<int64_t>(items, multiprocessors)), kBlockThreads, kSmemBytes, stream()>>>(
          z, A, B, Y, M, shared_m, P, ldp, out_rows);
  AVEY_LAUNCH_CHECK("tril_mm_kernel");
}

}  // namespace

bool tril_matmul_available() {
  static const bool available = [] {
    int* d = static_cast<int*>(allocate(sizeof(int)));
    AVEY_CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(int), stream()));
    arch_probe<<<1, 1, 0, stream()>>>(d);
    AVEY_LAUNCH_CHECK("arch_probe");
    int arch = 0;
    copy_to_host(&arch, d, sizeof(int));
    release(d, sizeof(int));
    return arch >= 800;
  }();
  return available;
}

// cos[b] = A[b] A[b]^T and a[b] = cos[b] (.) W on the tiles (i, j), j <= i (128 x 128): the cosine
// matrix of the normalised rows, cos[i, j] = sum_k A[i, k] A[j, k], weighted by the spatial
// matrix W. Tiles above the diagonal are not written; inside the diagonal tiles a is 0 above the
// diagonal because W is. a = round(round(cos) W), as the unfused product then multiply.
void tril_gram(int64_t batch, int64_t C, int64_t K, const bf16* A, PackedRows a_rows, const bf16* W, bf16* cos,
               bf16* a) {
  const Operand x{A, K, a_rows};
  launch<true, true, Span::Tril, Epi::StoreProduct>("tril_gram", batch, C, C, K, x, x, cos, W, true, a, C);
}

// G[b] = X[b] Y[b]^T on the tiles j <= i only: dA = dYc Z0^T, G[i, j] = sum_k X[i, k] Y[j, k].
void tril_nt(int64_t batch, int64_t C, int64_t K, const bf16* X, PackedRows x_rows, const bf16* Y,
             PackedRows y_rows, bf16* G) {
  launch<true, true, Span::Tril, Epi::Store>("tril_nt", batch, C, C, K, Operand{X, K, x_rows}, Operand{Y, K, y_rows}, G,
                                             nullptr, false, nullptr, C);
}

// Y[b] = L[b] B[b], L lower triangular: Y[i, n] = sum_{k <= i} L[i, k] B[k, n], so row tile i
// reads K tiles 0..i (the diagonal tile's upper part is zero in memory). With M, P given:
// P = round(round(Y) M), the unfused product then multiply (Yc = a Z0, c = Yc (.) Z1), written
// with rows ldp apart (c into the first columns of block_body's fuser input [c | Zh]).
void tril_lower_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y,
                   const bf16* M, bf16* P, int64_t ldp, PackedRows out_rows) {
  require((M == nullptr) == (P == nullptr), "tril_lower_mm", "M and P: both given or both null");
  const Operand l{L, C}, x{B, N, b_rows};
  if (M)
    launch<true, false, Span::KBelow, Epi::StoreProduct>("tril_lower_mm", batch, C, N, C, l, x, Y, M, false, P, ldp,
                                                         out_rows);
  else
    launch<true, false, Span::KBelow, Epi::Store>("tril_lower_mm", batch, C, N, C, l, x, Y, nullptr, false, nullptr, N,
                                                  out_rows);
}

// Y[b] = L[b]^T B[b], L lower triangular: (L^T B)[i, n] = sum_{k >= i} L[k, i] B[k, n], so row
// tile i reads rows k >= 128 i of L and B (dZ0's direct term a^T dYc).
void tril_upper_t_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y) {
  launch<false, false, Span::KAbove, Epi::Store>("tril_upper_t_mm", batch, C, N, C, Operand{L, C}, Operand{B, N, b_rows},
                                                 Y, nullptr, false, nullptr, N);
}

}  // namespace avey::kernels::cuda
