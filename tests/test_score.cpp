// Multiple-choice scoring by lm-evaluation-harness's rules (cli/score_tasks.h): how a request is
// tokenised, acc against acc_norm, the standard errors, and task files with errors by line.
#include "cli/score_tasks.h"

#include <cmath>

#include "data/byte_tokenizer.h"
#include "tests/testing.h"

using testing::error_of;

TEST_CASE("score: requests are encoded as lm-evaluation-harness encodes them") {
  data::ByteTokenizer tok;
  Request r = encode_request(tok, "Question: ", "yes");  // the context's trailing space moves to the continuation
  CHECK(r.context == tok.encode("Question:"));
  CHECK(r.continuation == tok.encode(" yes"));
  r = encode_request(tok, "", "Hi");  // an empty context is the end-of-text token
  CHECK(r.context == std::vector<int32_t>{tok.eot()});
  CHECK(r.continuation == tok.encode("Hi"));
  r = encode_request(tok, "a\n\n", "b");
  CHECK(r.context == tok.encode("a"));
  CHECK(r.continuation == tok.encode("\n\nb"));
}

TEST_CASE("score: acc takes the largest log-likelihood, acc_norm the largest per character") {
  Question q{"t", "ctx", {"a long right answer", "no"}, 0};
  // ll -10 over 19 characters beats -2 over 2 only when normalised
  Outcome o = judge(q, {-10.0, -2.0});
  CHECK_FALSE(o.acc);
  CHECK(o.acc_norm);
  q.choices = {"x", "y", "z"}, q.gold = 1;
  o = judge(q, {-1.0, -1.0, -3.0});  // a tie goes to the first
  CHECK_FALSE(o.acc);
  CHECK(utf8_length("naïve ✓") == 7);
  Score s = summarise({{true, true}, {false, true}, {true, true}, {false, false}});
  CHECK(s.n == 4);
  CHECK(s.acc == 0.5);
  CHECK(s.acc_norm == 0.75);
  CHECK(s.acc_stderr == doctest::Approx(std::sqrt(0.25 / 3)));  // sample std / sqrt(n)
  CHECK(std::isnan(summarise({{true, true}}).acc_stderr));
}

TEST_CASE("score: task files are JSON lines, errors name the line") {
  auto qs = parse_questions("{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n\n"
                            "{\"context\": \"\", \"choices\": [\"z\"], \"gold\": 0, \"task\": \"t\"}\n",
                            "f.jsonl");
  REQUIRE(qs.size() == 2);
  CHECK(qs[0].task == "all");
  CHECK(qs[0].gold == 1);
  CHECK(qs[1].task == "t");
  CHECK(error_of([] { parse_questions("{\"context\": \"c\", \"choices\": [], \"gold\": 0}", "f"); }) ==
        "f line 1: key 'choices': expected a list of strings");
  CHECK(error_of([] { parse_questions("\n{\"context\": 1}", "f"); }) == "f line 2: key 'context': expected a string, got 1");
  CHECK(error_of([] { parse_questions("  \n", "f"); }) == "f: holds no questions");
}
