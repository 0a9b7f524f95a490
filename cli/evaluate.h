// Validation loss, accuracy, bits per byte and their standard errors over a token stream,
// without recording gradients.
//
// The decoder predicts each next id; an encoder (Avey-B) the masked ids of each window: its T ids
// are masked as in training (data/masking.h: round(0.2 T) positions), seeded by the window's
// start, so every evaluation masks the same positions. Below, "predicted ids" are those.
//
// Windows: the N ids are cut into W = (N - 1) / T windows of T + 1 ids (window w starts at w*T;
// its first T ids are the inputs, its last T the targets), as the training loader cuts them.
//   the whole set (max_batches 0, or a budget that covers it): every window, then one shorter
//     window over the (N - 1) mod T ids left at the end, so every id but the first is predicted
//     exactly once;
//   a budget of max_batches: n = B * max_batches windows spread evenly over the set (window
//     floor(i W / n) for i < n), the same ones every time.
//
// loss: mean cross-entropy in nats per predicted id, end-of-text included (the training loss).
// accuracy: the share of predicted ids that are the logits' arg-max (top-1).
// bits per byte (with a tokenizer): the nats of the predicted ids that are text, divided by ln 2
//   times the UTF-8 bytes those ids decode to; end-of-text (no bytes) counts in neither sum.
// standard errors: the window is the sampling unit (ids within a window are correlated). For a
//   ratio r = sum_w a_w / sum_w b_w (a_w: a window's nats; b_w: its ids, or bytes) the standard
//   error is sqrt(sum_w (a_w - r b_w)^2 / (W (W - 1))) / mean_w b_w, which is the standard
//   deviation of the window means over sqrt(W) when all windows have the same length. NaN with
//   fewer than 2 windows.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "avey/model.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"

struct EvalResult {
  double loss = 0, loss_se = NAN;  // nats per predicted id
  double accuracy = 0, accuracy_se = NAN;
  double bpb = NAN, bpb_se = NAN;  // bits per byte; NaN without a tokenizer
  int64_t tokens = 0;              // ids predicted
  int64_t bytes = 0;               // UTF-8 bytes of the predicted text ids
  int64_t windows = 0;
};

// Throws one line for a non-positive batch size or sequence length, a negative max_batches, or
// fewer than 2 ids. With a progress label, shows a progress line on stderr.
EvalResult evaluate(avey::Model& model, const data::TokenStream& tokens, int64_t batch_size, int64_t seq_len,
                    int64_t max_batches, const data::Tokenizer* tokenizer = nullptr, const std::string& progress = "");
