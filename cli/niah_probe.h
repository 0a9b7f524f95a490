// The needle probe of `avey train --niah-probe N`: does the model copy the needle yet?
//
// N passkey training documents (data/needle_mix.h: a prompt shorter than the training length,
// then its answer " " + key; sizes, depths and keys from a fixed seed, the same at every
// evaluation) are run teacher-forced, one forward each. Reported: the share of answer tokens that
// are the logits' arg-max, and the share of documents whose answer tokens all are, which is what
// greedy decoding gets right (`avey niah` at lengths inside the training length). Loss curves
// hide this: the answer is a few tokens of each document, and a model that has learned "a number
// follows" but not which one scores far from one that copies.
#pragma once
#include <cstdint>
#include <vector>

#include "avey/model.h"
#include "data/tokenizer.h"

struct NiahProbe {
  std::vector<std::vector<int32_t>> documents;  // prompt and answer ids, each shorter than seq_len
  std::vector<int64_t> answer_tokens;           // per document: its last ids that are the answer
};

NiahProbe make_niah_probe(const data::Tokenizer& tok, int64_t seq_len, int64_t n);

struct ProbeScore {
  double token_accuracy = 0;  // answer tokens that are the arg-max
  double exact = 0;           // documents whose answer tokens all are
};

ProbeScore score_niah_probe(avey::Model& model, const NiahProbe& probe);
