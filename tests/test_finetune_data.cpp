// Fine-tuning data (data/task_file.h, data/task_metrics.h, data/finetune_tasks.h): the three JSON
// forms read and encoded with their labels aligned to p50k tokens, one clear error per bad line,
// the metrics against hand-computed values, the needle test's examples, the entity tagger, and the
// e-mail text of the spam task.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/data_dir.h"
#include "data/finetune_tasks.h"
#include "data/task_file.h"
#include "data/task_metrics.h"
#include "tests/testing.h"

namespace fs = std::filesystem;

namespace {

fs::path write_lines(const fs::path& dir, const std::string& name, const std::vector<std::string>& lines) {
  fs::create_directories(dir);
  std::ofstream out(dir / name);
  for (const auto& l : lines) out << l << "\n";
  return dir / name;
}

std::string error_of(const fs::path& p) {
  return testing::error_of([&] { data::read_task_file(p.string()); });
}

}  // namespace

TEST_CASE("finetune data: the three task forms, their labels, and one clear error per bad line") {
  testing::TempDir tmp("finetune");
  const fs::path dir = tmp.path;
  const data::RawTask seq = data::read_task_file(
      write_lines(dir, "seq.jsonl", {R"({"text": "buy now", "label": "spam"})", "", R"({"text": "hi Bob", "label": "ham"})",
                                     R"({"text": "ok", "label": "ham"})"}).string());
  CHECK(seq.kind == data::TaskKind::Sequence);
  CHECK(seq.examples.size() == 3);
  CHECK(data::task_labels(seq) == std::vector<std::string>{"ham", "spam"});
  const data::RawTask ints = data::read_task_file(
      write_lines(dir, "ints.jsonl", {R"({"text": "a", "label": 10})", R"({"text": "b", "label": 2})"}).string());
  CHECK(data::task_labels(ints) == std::vector<std::string>{"2", "10"});  // integers in numeric order
  const data::RawTask words = data::read_task_file(
      write_lines(dir, "words.jsonl", {R"({"tokens": ["Call", "me", "Ishmael"], "labels": ["O", "O", "B-PER"]})"}).string());
  CHECK(words.kind == data::TaskKind::TokenWords);
  CHECK(data::task_labels(words) == std::vector<std::string>{"O", "B-PER"});
  const data::RawTask spans = data::read_task_file(
      write_lines(dir, "spans.jsonl", {R"({"text": "née Ann", "spans": [{"start": 4, "end": 7, "label": "PER"}]})"}).string());
  CHECK(spans.kind == data::TaskKind::TokenSpans);
  CHECK(data::task_labels(spans) == std::vector<std::string>{"O", "PER"});

  CHECK(error_of(write_lines(dir, "a.jsonl", {R"({"text": "x", "label": "a"})", R"({"text": "y"})"})) ==
        (dir / "a.jsonl").string() + ":2: missing key 'label'");
  CHECK(error_of(write_lines(dir, "b.jsonl", {R"({"tokens": ["a", "b"], "labels": ["O"]})"})) ==
        (dir / "b.jsonl").string() + ":1: 2 tokens but 1 labels (one label per token)");
  CHECK(error_of(write_lines(dir, "c.jsonl", {R"({"text": "x", "label": "a"})", R"({"tokens": ["a"], "labels": ["O"]})"})) ==
        (dir / "c.jsonl").string() + ":2: a token (words) example in a file of sequence examples");
  CHECK(error_of(write_lines(dir, "d.jsonl", {R"({"text": "abc", "spans": [{"start": 2, "end": 4, "label": "X"}]})"})) ==
        (dir / "d.jsonl").string() + ":1: span [2, 4) is not inside the text's 3 characters");
  CHECK(error_of(write_lines(dir, "e.jsonl", {"{not json"})) == (dir / "e.jsonl").string() + ":1: not a JSON object");
  CHECK(error_of(write_lines(dir, "f.jsonl", {R"({"text": "x", "label": 1.5})"})) ==
        (dir / "f.jsonl").string() + ":1: 'label' must be a string or an integer, got 1.5");
  CHECK(error_of(write_lines(dir, "g.jsonl", {""})) == (dir / "g.jsonl").string() + ": no examples");
}

TEST_CASE("finetune data: encoding aligns word and span labels with p50k tokens") {
  if (!fs::exists(data::data_dir() + "/p50k_base.tiktoken")) return;  // scripts/fetch-data puts it there
  const auto tok = data::load_tokenizer("p50k");
  testing::TempDir tmp("finetune");
  // words: " Ishmael" belongs to "Ishmael"; every sub-token takes its word's label; end-of-text -100
  const data::RawTask words = data::read_task_file(
      write_lines(tmp.path, "w.jsonl", {R"({"tokens": ["Call", "me", "Ishmaelite"], "labels": ["O", "O", "B-PER"]})"}).string());
  const std::vector<std::string> labels = data::task_labels(words);
  const data::EncodedExample w = data::encode_task(words, labels, *tok, 64, "w").at(0);
  CHECK(tok->decode(w.ids) == "Call me Ishmaelite<|endoftext|>");
  REQUIRE(w.ids.size() >= 5);  // Call, me, Ish, mael, ite, eot (the word splits into sub-tokens)
  CHECK(w.word_of.front() == 0);
  CHECK(w.word_of[1] == 1);
  CHECK(w.word_of.back() == -1);
  CHECK(w.token_labels.back() == -100);
  for (size_t i = 2; i + 1 < w.ids.size(); ++i) CHECK(w.token_labels[i] == 1);  // every piece of "Ishmaelite"
  CHECK(w.words == 3);
  // spans in characters: "née" has a two-byte character before the span
  const data::RawTask spans = data::read_task_file(
      write_lines(tmp.path, "s.jsonl", {R"({"text": "née Ann Lee went", "spans": [{"start": 4, "end": 11, "label": "PER"}]})"}).string());
  const data::EncodedExample s = data::encode_task(spans, data::task_labels(spans), *tok, 64, "s").at(0);
  std::string tagged;
  for (size_t i = 0; i < s.ids.size(); ++i)
    if (s.token_labels[i] == 1) tagged += tok->decode({s.ids[i]});
  CHECK(tagged == " Ann Lee");
  CHECK(s.token_labels.back() == 0);  // end-of-text is "O"
  // max_len cuts ids and labels together; a label never seen in training is one clear error
  CHECK(data::encode_task(words, labels, *tok, 3, "w").at(0).ids.size() == 3);
  const data::RawTask val = data::read_task_file(
      write_lines(tmp.path, "v.jsonl", {R"({"tokens": ["Hi"], "labels": ["B-LOC"]})"}).string());
  CHECK(testing::error_of([&] { data::encode_task(val, labels, *tok, 64, "val.jsonl"); }) ==
        "val.jsonl: example 1 has the label 'B-LOC', which the training file never uses");
  CHECK(data::char_to_byte_offsets("né") == std::vector<int64_t>{0, 1, 3});
}

TEST_CASE("finetune data: metrics against hand-computed values") {
  // macro-F1: class 0 P 1/2 R 1/1 -> 2/3; class 1 P 1/1 R 1/2 -> 2/3; class 2 never right -> 0
  CHECK(data::macro_f1({0, 1, 1, 2}, {0, 1, 0, 1}) == doctest::Approx((2.0 / 3 + 0.5 + 0) / 3));
  const auto e = data::entities_of({"B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "PER", "PER", "I-PER"});
  REQUIRE(e.size() == 4);
  CHECK((e[0].first == 0 && e[0].last == 1 && e[0].type == "PER"));
  CHECK((e[1].first == 3 && e[1].last == 4 && e[1].type == "LOC"));  // a stray I- starts an entity
  CHECK((e[2].first == 5 && e[2].last == 5));                          // B- always starts a new one
  CHECK((e[3].first == 6 && e[3].last == 8 && e[3].type == "PER"));   // plain labels: a run is one entity
  CHECK(data::token_set_f1({4, 5}, {5, 6, 7}) == doctest::Approx(2 * (1.0 / 3) * 0.5 / (1.0 / 3 + 0.5)));
  CHECK(data::token_set_f1({}, {}) == 1.0);  // both empty: {0} against {0}
  CHECK(data::token_set_f1({3}, {}) == 0.0);
  // words: each word's label is its sub-tokens' majority (ties to the lower id)
  data::EncodedExample ex;
  ex.ids = {1, 2, 3, 4, 5};
  ex.word_of = {0, 0, 1, 1, -1};
  ex.token_labels = {1, 1, 0, 0, -100};
  ex.words = 2;
  CHECK(data::word_votes(ex, {1, 2, 2, 0, 0}, 3) == std::vector<int32_t>{1, 0});  // word 0: 1 vs 2 tie -> 1
  const data::TaskScores s = data::score_task(data::TaskKind::TokenWords, {"O", "B-X", "I-X"}, {ex}, {{1, 1, 0, 0, 2}});
  CHECK(s.primary == "entity_f1");
  CHECK(s.metrics.at("entity_f1") == 1.0);
  CHECK(s.metrics.at("word_accuracy") == 1.0);
}

TEST_CASE("finetune data: each task kind's scores against hand-computed values") {
  // sequence: 2 of 4 right; macro-F1 as above
  std::vector<data::EncodedExample> seq(4);
  const std::vector<int32_t> gold = {0, 1, 1, 2}, guess = {0, 1, 0, 1};
  for (size_t i = 0; i < 4; ++i) seq[i].label = gold[i];
  const data::TaskScores a = data::score_task(data::TaskKind::Sequence, {"a", "b", "c"}, seq, {{0}, {1}, {0}, {1}});
  CHECK(a.primary == "accuracy");
  CHECK(a.metrics.at("accuracy") == 0.5);
  CHECK(a.metrics.at("macro_f1") == doctest::Approx(data::macro_f1(gold, guess)));

  // token (words), one token per word. Gold: [John Smith]PER went to [Paris]LOC; predicted:
  // [John]PER [Smith]PER went to [Paris]LOC -> 1 of 3 predicted entities right, 1 of 2 gold found:
  // P 1/3, R 1/2, F1 2/5; words right 4 of 5 (Smith: I-PER vs B-PER)
  const std::vector<std::string> L = {"O", "B-PER", "I-PER", "B-LOC"};
  data::EncodedExample w;
  w.ids = {10, 11, 12, 13, 14};
  w.word_of = {0, 1, 2, 3, 4};
  w.token_labels = {1, 2, 0, 0, 3};
  w.words = 5;
  const data::TaskScores e = data::score_task(data::TaskKind::TokenWords, L, {w}, {{1, 1, 0, 0, 3}});
  CHECK(e.metrics.at("entity_f1") == doctest::Approx(0.4));
  CHECK(e.metrics.at("word_accuracy") == doctest::Approx(0.8));
  // an entity is matched within its own example only: the same entity in a second example that
  // the model misses costs recall (P 1/3 -> 1/3, R 1/2 -> 1/4: F1 2/7)
  const data::TaskScores e2 = data::score_task(data::TaskKind::TokenWords, L, {w, w}, {{1, 1, 0, 0, 3}, {0, 0, 0, 0, 0}});
  CHECK(e2.metrics.at("entity_f1") == doctest::Approx(2.0 / 7));

  // token (spans): example 1 gold {1, 2}, predicted {2, 3}: F1 1/2; example 2 gold {} (= {0}),
  // predicted {} (= {0}): F1 1; the mean 3/4; tokens right 5 of 7 scored (-100 is not scored)
  data::EncodedExample s1, s2;
  s1.token_labels = {0, 1, 1, 0, -100};
  s2.token_labels = {0, 0, 0};
  const data::TaskScores t = data::score_task(data::TaskKind::TokenSpans, {"O", "answer"}, {s1, s2}, {{0, 0, 1, 1, 1}, {0, 0, 0}});
  CHECK(t.primary == "token_set_f1");
  CHECK(t.metrics.at("token_set_f1") == doctest::Approx(0.75));
  CHECK(t.metrics.at("token_accuracy") == doctest::Approx(5.0 / 7));
}

TEST_CASE("finetune data: the needle test puts the target among its distractors and labels its characters") {
  data::NeedleOptions o;
  o.words = 60, o.train = 40, o.eval = 10, o.seed = 5;
  const data::TaskSplits a = data::needle_task(o), b = data::needle_task(o);
  CHECK(a.train == b.train);  // seeded
  CHECK(a.train.size() == 40);
  CHECK(a.test.size() == 10);
  int with_distractor = 0;
  for (const auto& j : a.train) {
    const std::string text = j["text"];
    const auto& span = j["spans"][0];
    const std::string needle = text.substr(span["start"].get<size_t>(), span["end"].get<size_t>() - span["start"].get<size_t>());
    CHECK(needle.size() == 7);
    CHECK(std::all_of(needle.begin(), needle.end(), ::isdigit));
    CHECK(text.rfind("Question: What is the ", 0) == 0);
    const std::string context = text.substr(text.find("\nContext: ") + 10);
    std::vector<std::string> words;
    int numbers = 0;
    for (const std::string& w : data::split_words(context)) words.push_back(w), numbers += std::isdigit(w[0]) != 0;
    CHECK(words.size() == 60);
    CHECK(numbers >= 1);
    with_distractor += numbers == 2;
    const bool second = text.find("second special number") != std::string::npos;
    if (second) CHECK(numbers == 2);
  }
  CHECK(with_distractor > 20);  // 80% of the training examples have one distractor
  o.needle = "word";
  const std::string w = data::needle_task(o).train[0]["text"];
  CHECK(w.find("special word") != std::string::npos);
  o.train_distractors = "0:0.5";
  CHECK(testing::error_of([&] { data::needle_task(o); }) == "distractors '0:0.5': probabilities sum to 0.5, not 1");
}

TEST_CASE("finetune data: the entity tagger's rules") {
  data::EntityLists lists;
  lists.first_names = {"Abraham", "John"};
  lists.add_place("New York");
  lists.add_place("York");
  lists.add_place("Mexico");
  const std::vector<std::string> w = data::split_words(
      "In 1862 John Quincy Adams went to New York and Mexico on March 4, 1865; May we go? Abraham said so.");
  const std::vector<std::string> t = data::tag_entities(w, lists);
  std::string got;
  for (size_t i = 0; i < w.size(); ++i) got += t[i] == "O" ? "" : w[i] + "/" + t[i] + " ";
  CHECK(got == "1862/B-DATE John/B-PER Quincy/I-PER Adams/I-PER New/B-LOC York/I-LOC Mexico/B-LOC March/B-DATE "
               "4/I-DATE ,/I-DATE 1865/I-DATE ");  // "May" alone is not a month; "Abraham" without a surname no name
  CHECK(data::split_words("don't stop: 42x") == std::vector<std::string>{"don't", "stop", ":", "42", "x"});
}

TEST_CASE("finetune data: the spam task keeps the Subject and the body, labels by folder, splits 80/10/10") {
  testing::TempDir tmp("finetune");
  for (const char* g : {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}) {
    fs::create_directories(tmp.path / g);
    for (int i = 0; i < 4; ++i)
      std::ofstream(tmp.path / g / (std::to_string(i) + ".txt"))
          << "From: x@y\nSubject: Hello\n  world " << i << "\nX-Spam: no\n\nBody of " << g << "\n";
  }
  const data::TaskSplits s = data::spam_task(tmp.path.string(), {});
  CHECK(s.train.size() + s.val.size() + s.test.size() == 20);
  CHECK(s.train.size() == 16);
  std::set<std::string> texts;
  for (const auto* split : {&s.train, &s.val, &s.test})
    for (const auto& j : *split) {
      const std::string text = j["text"];
      CHECK(text.rfind("Subject: Hello world ", 0) == 0);
      CHECK(text.find("X-Spam") == std::string::npos);
      CHECK(j["label"] == (text.find("Body of spam") != std::string::npos ? "spam" : "ham"));
      texts.insert(text);
    }
  CHECK(texts.size() == 20);
  CHECK_THROWS_WITH(data::spam_task((tmp.path / "none").string(), {}), doctest::Contains("scripts/fetch-data --spam"));
}
