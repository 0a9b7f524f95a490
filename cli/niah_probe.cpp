#include "cli/niah_probe.h"

#include "data/needle_mix.h"
#include "engine/autograd.h"
#include "engine/fused_ops.h"
#include "engine/ops.h"

NiahProbe make_niah_probe(const data::Tokenizer& tok, int64_t seq_len, int64_t n) {
  // Passkey documents read no corpus text (the essay haystack is sniah2's, given a sentence here);
  // the seed is fixed so that every evaluation, and every run, scores the same documents.
  data::niah::NeedleDocuments docs(tok, seq_len, "The grass is green.", 20261203);
  NiahProbe probe;
  for (int64_t i = 0; i < n; ++i) {
    data::niah::NeedleDocuments::Document d = docs.document(data::niah::Task::Passkey);
    probe.documents.push_back(std::move(d.ids));
    probe.answer_tokens.push_back(d.answer_tokens);
  }
  return probe;
}

ProbeScore score_niah_probe(avey::Model& model, const NiahProbe& probe) {
  engine::NoGrad no_grad;
  int64_t right = 0, total = 0, exact = 0;
  for (size_t i = 0; i < probe.documents.size(); ++i) {
    const std::vector<int32_t>& ids = probe.documents[i];
    const int64_t n = int64_t(ids.size()) - 1, a = probe.answer_tokens[i];  // n inputs, the last a targets
    const std::vector<int32_t> inputs(ids.begin(), ids.end() - 1);
    engine::Tensor logits = model.logits(engine::Tensor::from(inputs, {1, n}, model.device()));
    logits = engine::slice_rows(engine::reshape(logits, {n, logits.size(-1)}), n - a, n);
    if (logits.dtype() == engine::DType::BF16) logits = engine::cast(logits, engine::DType::F32);
    const std::vector<int32_t> best = engine::row_argmax(logits).to(engine::Device::CPU).to_vector<int32_t>();
    int64_t doc_right = 0;
    for (int64_t j = 0; j < a; ++j) doc_right += best[size_t(j)] == ids[size_t(n + 1 - a + j)];
    right += doc_right, total += a, exact += doc_right == a;
  }
  ProbeScore s;
  if (total > 0) s.token_accuracy = double(right) / double(total);
  if (!probe.documents.empty()) s.exact = double(exact) / double(probe.documents.size());
  return s;
}
