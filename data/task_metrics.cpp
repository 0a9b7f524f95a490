#include "data/task_metrics.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <stdexcept>

namespace data {

namespace {

double f1_of(double tp, double n_pred, double n_gold) {
  const double p = n_pred > 0 ? tp / n_pred : 0.0, r = n_gold > 0 ? tp / n_gold : 0.0;
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

}  // namespace

std::vector<int32_t> word_votes(const EncodedExample& ex, const std::vector<int32_t>& pred, size_t labels) {
  std::vector<std::vector<int64_t>> votes(size_t(ex.words), std::vector<int64_t>(labels, 0));
  for (size_t i = 0; i < ex.word_of.size(); ++i)
    if (ex.word_of[i] >= 0) ++votes[size_t(ex.word_of[i])][size_t(pred[i])];
  std::vector<int32_t> out(size_t(ex.words), -1);  // -1: every sub-token cut off by max_len
  for (size_t w = 0; w < out.size(); ++w)
    if (*std::max_element(votes[w].begin(), votes[w].end()) > 0)
      out[w] = int32_t(std::max_element(votes[w].begin(), votes[w].end()) - votes[w].begin());
  return out;
}

bool Entity::operator<(const Entity& o) const {
  return std::tie(first, last, type) < std::tie(o.first, o.last, o.type);
}

double macro_f1(const std::vector<int32_t>& gold, const std::vector<int32_t>& pred) {
  std::set<int32_t> classes(gold.begin(), gold.end());
  classes.insert(pred.begin(), pred.end());
  double total = 0;
  for (int32_t c : classes) {
    double tp = 0, np = 0, ng = 0;
    for (size_t i = 0; i < gold.size(); ++i) tp += gold[i] == c && pred[i] == c, np += pred[i] == c, ng += gold[i] == c;
    total += f1_of(tp, np, ng);
  }
  return classes.empty() ? 0.0 : total / double(classes.size());
}

std::vector<Entity> entities_of(const std::vector<std::string>& tags) {
  std::vector<Entity> out;
  std::string open;  // the type of the entity being extended, "" when none
  for (size_t i = 0; i < tags.size(); ++i) {
    const std::string& t = tags[i];
    const bool b = t.rfind("B-", 0) == 0, in = t.rfind("I-", 0) == 0;
    const std::string type = b || in ? t.substr(2) : t;
    if (t == "O" || t.empty()) {
      open.clear();
      continue;
    }
    if (!b && type == open) {
      out.back().last = int64_t(i);
      continue;
    }
    out.push_back({int64_t(i), int64_t(i), type});
    open = type;
  }
  return out;
}

double token_set_f1(const std::vector<int64_t>& gold, const std::vector<int64_t>& pred) {
  const std::set<int64_t> g = gold.empty() ? std::set<int64_t>{0} : std::set<int64_t>(gold.begin(), gold.end());
  const std::set<int64_t> p = pred.empty() ? std::set<int64_t>{0} : std::set<int64_t>(pred.begin(), pred.end());
  double tp = 0;
  for (int64_t x : p) tp += g.count(x);
  return f1_of(tp, double(p.size()), double(g.size()));
}

TaskScores score_task(TaskKind kind, const std::vector<std::string>& labels, const std::vector<EncodedExample>& examples,
                      const std::vector<std::vector<int32_t>>& predictions) {
  if (predictions.size() != examples.size()) throw std::invalid_argument("score_task: one prediction per example");
  TaskScores s;
  if (kind == TaskKind::Sequence) {
    std::vector<int32_t> gold, pred;
    for (size_t e = 0; e < examples.size(); ++e) gold.push_back(examples[e].label), pred.push_back(predictions[e].at(0));
    double right = 0;
    for (size_t i = 0; i < gold.size(); ++i) right += gold[i] == pred[i];
    s.primary = "accuracy";
    s.metrics = {{"accuracy", right / double(gold.size())}, {"macro_f1", macro_f1(gold, pred)}};
    return s;
  }
  if (kind == TaskKind::TokenWords) {
    std::set<std::tuple<size_t, int64_t, int64_t, std::string>> gold_e, pred_e;
    double words = 0, right = 0;
    for (size_t e = 0; e < examples.size(); ++e) {
      const EncodedExample& ex = examples[e];
      const std::vector<int32_t> pw = word_votes(ex, predictions[e], labels.size());
      std::vector<int32_t> gw(size_t(ex.words), -1);
      for (size_t i = 0; i < ex.word_of.size(); ++i)
        if (ex.word_of[i] >= 0) gw[size_t(ex.word_of[i])] = ex.token_labels[i];
      std::vector<std::string> gt, pt;  // the scored words (those max_len kept)
      for (size_t w = 0; w < gw.size(); ++w)
        if (gw[w] >= 0) gt.push_back(labels[size_t(gw[w])]), pt.push_back(labels[size_t(pw[w])]), ++words, right += gw[w] == pw[w];
      for (const Entity& x : entities_of(gt)) gold_e.insert({e, x.first, x.last, x.type});
      for (const Entity& x : entities_of(pt)) pred_e.insert({e, x.first, x.last, x.type});
    }
    double tp = 0;
    for (const auto& x : pred_e) tp += gold_e.count(x);
    s.primary = "entity_f1";
    s.metrics = {{"entity_f1", f1_of(tp, double(pred_e.size()), double(gold_e.size()))},
                 {"word_accuracy", words > 0 ? right / words : 0.0}};
    return s;
  }
  const int32_t outside = int32_t(std::find(labels.begin(), labels.end(), "O") - labels.begin());
  double f1 = 0, tokens = 0, right = 0;
  for (size_t e = 0; e < examples.size(); ++e) {
    std::vector<int64_t> g, p;
    for (size_t i = 0; i < examples[e].token_labels.size(); ++i) {
      const int32_t y = examples[e].token_labels[i], yp = predictions[e][i];
      if (y == -100) continue;
      if (y != outside) g.push_back(int64_t(i));
      if (yp != outside) p.push_back(int64_t(i));
      ++tokens, right += y == yp;
    }
    f1 += token_set_f1(g, p);
  }
  s.primary = "token_set_f1";
  s.metrics = {{"token_set_f1", f1 / double(examples.size())}, {"token_accuracy", tokens > 0 ? right / tokens : 0.0}};
  return s;
}

std::string metric_title(const std::string& m) {
  if (m == "accuracy") return "accuracy";
  if (m == "macro_f1") return "macro-F1";
  if (m == "entity_f1") return "entity F1";
  if (m == "token_set_f1") return "token-set F1";
  if (m == "word_accuracy") return "word accuracy";
  if (m == "token_accuracy") return "token accuracy";
  return m;
}

}  // namespace data
