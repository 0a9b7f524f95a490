// Avey-B's fine-tuning heads and their losses (docs/model.md section 2, "Fine-tuning heads"),
// on the encoder's output rows `out` (Model's last layer, cut back to the T real positions).
//
// Sequence classification (the reference's AveyForSequenceClassification), per sequence b:
//   p_b    = (1/T) sum_t out[b, t]                       mean over ALL T positions of the batch
//                                                         (padding included, as the reference)
//   x1     = gelu(p W0^T + b0)                           dense.0: d -> 2d, exact erf GELU
//   x2     = gelu(x1 W2^T + b2)                          dense.2: 2d -> 2d
//   x3     = x2 W4^T + b4                                dense.4: 2d -> d (no activation after)
//   logits = x3 Wc^T + bc                                classifier: d -> labels
// Token classification (AveyForTokenClassification), per row r of out:
//   logits = tanh(out W0^T + b0) Wc^T + bc               dense.0: d -> d, classifier: d -> labels
//
// Losses, chosen as the reference chooses them:
//   num_labels 1 (regression):   MSE   = mean_b (logit_b - y_b)^2
//   integer labels:              CE    = mean over labels != -100 of lse(logits) - logit[y]
//   float multi-labels y in [0,1]: BCE = mean_{b,j} softplus(x) - x y,   x = logits[b, j],
//                                  softplus(x) = relu(x) + log(1 + exp(-|x|))  (never overflows:
//                                  exp's argument is <= 0), |x| = relu(x) + relu(-x)
//
// Every piece is composed from recorded engine primitives (matmul, add, gelu, tanh, relu, exp,
// log, cross_entropy), so the backward is the primitives' own, each checked against finite
// differences in tests/test_ops.cpp; tests/test_heads.cpp checks the heads themselves (fp64
// gradcheck of every weight and of the encoder rows) and against a plain loop. They are tiny next
// to the encoder (a few d x 2d products per sequence), so no fused twin is needed.
#pragma once
#include <string>

#include "engine/ops.h"

namespace avey {

// nn.Linear: y = x W^T + b, W [out, in], b [out].
struct Linear {
  engine::Tensor w, b;
};
engine::Tensor linear(const engine::Tensor& x, const Linear& l);

// Names dense.0, dense.2, dense.4, classifier: the reference's state-dict names.
struct SequenceHead {
  Linear dense0, dense2, dense4, classifier;
};
// Names dense.0, classifier.
struct TokenHead {
  Linear dense0, classifier;
};

// out [B, T, d] -> [B, d]: the mean over the T rows of each sequence.
engine::Tensor mean_pool(const engine::Tensor& out);
// pooled [B, d] -> logits [B, labels].
engine::Tensor sequence_head(const engine::Tensor& pooled, const SequenceHead& h);
// rows [M, d] -> logits [M, labels].
engine::Tensor token_head(const engine::Tensor& rows, const TokenHead& h);

// The sequence head's loss by the reference's rule: one label -> MSE against float targets [B];
// i32 targets [B] -> cross-entropy; float targets [B, labels] -> BCE with logits.
engine::Tensor sequence_loss(const engine::Tensor& logits, const engine::Tensor& targets);
engine::Tensor mse_loss(const engine::Tensor& prediction, const engine::Tensor& target);    // same shapes
engine::Tensor bce_with_logits(const engine::Tensor& logits, const engine::Tensor& target);  // same shapes

}  // namespace avey
