// Avey-B, the encoder (docs/model.md section 2): its ranker's compression and its layers.
//
// Contexts: each split i's context [w X_j ; ... ; X_i] (avey/ranker.h, Avey-B's rule: the kept
// splits by descending score, w = v / (min v + eps)), left-padded to C rows, is compressed back to
// S rows by one [S, C] matrix shared by every context: H_i = P ctx_i + X_i.
//
// A layer on the B n splits [S, d] (alpha a learned scalar; static layers even, dynamic odd):
//   y  = RMSNorm(h)                               (eps the config's, 1e-12)
//   u  = gelu(y W_e^T + b_e) = [z | gt | byp]     (d -> 4d, exact erf GELU; d, d and 2d columns)
//   static:   c = M z                             (M [S, S], its own per static layer)
//   dynamic:  zn = z / max(|z|, 1e-12),  A = zn zn^T,  An = A / max(rowsum |A|, 1e-12),  c = An z
//   h <- [gt (.) c | byp] W_f^T + b_f + alpha h
//
// The fused layer (one autograd node, encoder_layer below) derives its backward, dF = dL/dh_out:
//   dalpha = sum(dF (.) h);  dh (residual) = alpha dF;  db_f = colsum dF
//   dW_f = dF^T cz,  [dg | dbyp] = dF W_f          (cz = [gt (.) c | byp])
//   dgt = dg (.) c,  dc = dg (.) gt
//   static:   dM = sum over splits of dc z^T;  dz = M^T dc
//   dynamic:  dAn = dc z^T;  dz = An^T dc;  dA = l1norm'(dAn): (dAn - sign(A) (dAn . An)) / d per row
//             (d = max(rowsum |A|, eps); [s > eps] on the second term);  dzn = (dA + dA^T) zn;
//             dz += l2norm'(dzn): (dzn - zn (zn . dzn)) / d' per row where |z| > 1e-12
//   dP = gelu'(P) (.) [dz | dgt | dbyp];  db_e = colsum dP;  dW_e = dP^T y;  dy = dP W_e
//   dh += rmsnorm'(dy)
// encoder_layer_composed is the same function recorded op by op (the tests' reference).
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

// One layer's parameters (reference names layers.{l}.norm.weight, .enricher.{weight,bias},
// .spatial_proj (static layers only), .fuser.{weight,bias}, .alpha).
struct EncoderLayerWeights {
  engine::Tensor norm_gain, enricher_w, enricher_b, spatial, fuser_w, fuser_b, alpha;
  bool is_static() const { return spatial.defined(); }
};

// Avey-B's L1 and L2 row normalisation floors (F.normalize's default eps).
constexpr double kEncoderNormFloor = 1e-12;

// h [N*S, d] (N splits of S rows) -> the layer's output, same shape.
engine::Tensor encoder_layer(const engine::Tensor& h, const EncoderLayerWeights& w, const Config& cfg,
                             bool composed = false);
engine::Tensor encoder_layer_fused(const engine::Tensor& h, const EncoderLayerWeights& w, const Config& cfg);
engine::Tensor encoder_layer_composed(const engine::Tensor& h, const EncoderLayerWeights& w, const Config& cfg);

// The contexts ctx [N, C, d] (avey/ranker.h's build_contexts) and the splits x [N*S, d] -> the
// compressed H [N*S, d] = P ctx + x. Recorded.
engine::Tensor compress_contexts(const engine::Tensor& ctx, const engine::Tensor& down_proj, const engine::Tensor& x);

}  // namespace avey
