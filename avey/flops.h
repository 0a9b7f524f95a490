// Model FLOPs per token, for MFU (model FLOPs utilisation) and for benchmark tables.
//
// Counted: the matrix products (2 flops per multiply-add). Per layer, every row of a context
// (C = (k+1) S rows, of which S are new tokens) costs, forward:
//   enricher        2 d m
//   contextualizer  2 C mt/2 (cosine Z0^ Z0^T, when dynamic) + 2 C mt/2 (mixing A Z0)
//   fuser           2 (mt/2 + mh) d
// so a token costs C/S rows of that, times L layers. The tied head costs 2 d V per token, and
// the ranker's MaxSim 2 S d per earlier split, on average (n - 1) S d per token for n = T/S
// splits. Training = 3x the forward for the blocks and the head (forward, and backward's two
// products per forward product); the ranker counts once (its backward is a sparse scatter).
// The C x C products are counted whole, as dense kernels compute them, triangle included.
// Avey-B (an encoder: every row is a token's own): the compression 2 C d, and per layer 2 d 4d
// (enricher) + 2 3d d (fuser) + the split mixing 2 S d (static) or 4 S d (dynamic: the
// similarity and the mixing), the layers alternating; its MLM head is counted for every token
// (as the reference computes every token's logits; the engine computes the masked ones only).
#pragma once
#include "avey/config.h"

namespace avey {

double forward_flops_per_token(const Config& cfg, int64_t seq_len);
double train_flops_per_token(const Config& cfg, int64_t seq_len);

}  // namespace avey
