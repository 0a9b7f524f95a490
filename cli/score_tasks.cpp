#include "cli/score_tasks.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "cli/json_fields.h"
#include "engine/autograd.h"

std::vector<Question> parse_questions(const std::string& jsonl, const std::string& what) {
  std::vector<Question> out;
  std::istringstream in(jsonl);
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{} line {}", what, line_no);
    const nlohmann::json j = parse_json_object(line, where);
    Question q;
    q.task = j.contains("task") ? json_string(j["task"], "task", where) : "all";
    q.context = json_string(json_field(j, "context", where), "context", where);
    const nlohmann::json& choices = json_field(j, "choices", where);
    if (!choices.is_array() || choices.empty()) throw std::runtime_error(where + ": key 'choices': expected a list of strings");
    for (const auto& c : choices) q.choices.push_back(json_string(c, "choices", where));
    q.gold = json_int(json_field(j, "gold", where), "gold", where);
    if (q.gold >= int64_t(q.choices.size()))
      throw std::runtime_error(fmt::format("{}: key 'gold': {} is not the index of one of the {} choices", where, q.gold,
                                           q.choices.size()));
    out.push_back(std::move(q));
  }
  if (out.empty()) throw std::runtime_error(what + ": holds no questions");
  return out;
}

Request encode_request(const data::Tokenizer& tok, std::string context, std::string continuation) {
  if (context.empty()) return {{tok.eot()}, tok.encode(continuation)};
  const size_t kept = context.find_last_not_of(" \t\n\r\f\v") + 1;  // as Python's rstrip(); npos + 1 == 0
  continuation = context.substr(kept) + continuation;
  context.resize(kept);
  Request r{tok.encode(context), {}};
  const std::vector<int32_t> whole = tok.encode(context + continuation);
  r.continuation.assign(whole.begin() + long(std::min(r.context.size(), whole.size())), whole.end());
  return r;
}

double loglikelihood(avey::Model& model, const Request& r, int64_t max_length) {
  if (r.continuation.empty()) return 0;
  std::vector<int32_t> all = r.context;
  all.insert(all.end(), r.continuation.begin(), r.continuation.end());
  const size_t window = std::min(all.size(), size_t(max_length) + 1);
  const std::vector<int32_t> input(all.end() - long(window), all.end() - 1);
  const int64_t T = int64_t(input.size()), V = model.config().vocab_size;
  engine::NoGrad no_grad;
  const std::vector<float> logits = model.logits(engine::Tensor::from(input, {1, T}))
                                        .to(engine::Device::CPU)
                                        .to(engine::DType::F32)
                                        .to_vector<float>();
  double ll = 0;
  const int64_t first = T - int64_t(r.continuation.size());  // the row that predicts the first continuation token
  for (size_t j = 0; j < r.continuation.size(); ++j) {
    const float* row = logits.data() + (first + int64_t(j)) * V;
    double top = row[0], sum = 0;
    for (int64_t v = 1; v < V; ++v) top = std::max(top, double(row[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - top);
    ll += double(row[r.continuation[j]]) - top - std::log(sum);
  }
  return ll;
}

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // every byte but continuation bytes starts a character
  return n;
}

Outcome judge(const Question& q, const std::vector<double>& lls) {
  size_t best = 0, best_norm = 0;
  auto norm = [&](size_t i) { return lls[i] / double(std::max<int64_t>(1, utf8_length(q.choices[i]))); };
  for (size_t i = 1; i < lls.size(); ++i) {
    if (lls[i] > lls[best]) best = i;
    if (norm(i) > norm(best_norm)) best_norm = i;
  }
  return {int64_t(best) == q.gold, int64_t(best_norm) == q.gold};
}

Score summarise(const std::vector<Outcome>& outcomes) {
  Score s;
  s.n = int64_t(outcomes.size());
  auto mean_and_stderr = [&](bool Outcome::*field, double& mean, double& stderr_) {
    double hits = 0;
    for (const Outcome& o : outcomes) hits += o.*field;
    mean = hits / double(s.n);
    // sample standard deviation of 0/1 values: sqrt(n p (1 - p) / (n - 1)); over sqrt(n)
    stderr_ = s.n < 2 ? NAN : std::sqrt(mean * (1 - mean) / double(s.n - 1));
  };
  mean_and_stderr(&Outcome::acc, s.acc, s.acc_stderr);
  mean_and_stderr(&Outcome::acc_norm, s.acc_norm, s.acc_norm_stderr);
  return s;
}
