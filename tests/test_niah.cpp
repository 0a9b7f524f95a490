// Needle-in-a-haystack prompts, keys, scoring and training documents (data/niah_prompts.h,
// data/niah_words.h, data/needle_mix.h). The expected prompts are built here from the rules as
// the reference and RULER state them, not from the code under test.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include "data/documents.h"
#include "data/data_dir.h"
#include "data/needle_mix.h"
#include "data/niah_prompts.h"
#include "data/tokenizer.h"

namespace niah = data::niah;

namespace {

const std::string F = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

// The reference's " ".join([garbage] * 10000), cut.
std::string joined_filler(size_t chars) {
  std::string s;
  while (s.size() < chars) s += (s.empty() ? "" : " ") + F;
  return s.substr(0, chars);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

const data::Tokenizer& p50k() {
  static auto tok = data::load_tokenizer("p50k");
  return *tok;
}

}  // namespace

TEST_CASE("niah: passkey filler length is the reference's 3.75 characters a token, in whole thousands") {
  CHECK(niah::passkey_chars(1000) == 3000);  // int(3.75 * 1000 // 1000 * 1000)
  CHECK(niah::passkey_chars(2000) == 7000);
  CHECK(niah::passkey_chars(4000) == 15000);
  CHECK(niah::passkey_chars(24000) == 90000);
  CHECK(niah::passkey_chars(64000) == 240000);
  CHECK(niah::passkey_chars(1000000) == 3750000);
  CHECK(niah::passkey_chars(200) == 750);  // below 1000 tokens: floor(3.75 L)
  CHECK(niah::passkey_chars(101) == 378);
}

TEST_CASE("niah: the passkey prompt is the reference's, line for line") {
  // lines = ["", garbage[:n_pref], "The pass key is {key}", garbage[:n - n_pref], "The pass key is"]
  for (int depth : {0, 10, 30, 50, 90, 100}) {
    const size_t n = 3000, prefix = size_t(depth) * (n / 10) / 10;  // depth_idx * (n_garbage // 10)
    std::string expected = "\n";
    expected += joined_filler(prefix) + "\nThe pass key is 2733\n";
    expected += joined_filler(n - prefix) + "\nThe pass key is";
    CHECK(niah::passkey_prompt(3000, depth, "2733") == expected);
  }
  const std::string p = niah::passkey_prompt(niah::passkey_chars(64000), 40, "17531");
  CHECK(p.size() == 1 + 96000 + 1 + 21 + 1 + 144000 + 1 + 15);
  CHECK(p.substr(0, 21) == "\nThe grass is green. ");
  CHECK(p.find("\nThe pass key is 17531\n") == 96001);
  CHECK(p.ends_with("\nThe pass key is"));
  CHECK(niah::filler(95) == F + " The g");
  CHECK(niah::passkey_prompt(200, 50, "2733") ==  // docs/niah.md's example
        "\n" + F + " The grass \nThe pass key is 2733\n" + F + " The grass \nThe pass key is");
}

TEST_CASE("niah: passkeys start with the reference's five, then draws in 1..49999 from the seed") {
  const std::vector<std::string> reference = {"2733", "33004", "23721", "5995", "17531"};
  const auto keys = niah::passkeys(8, true, 11);
  REQUIRE(keys.size() == 8);
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 5) == reference);
  CHECK(niah::passkeys(3, true, 11) == std::vector<std::string>(reference.begin(), reference.begin() + 3));
  const auto drawn = niah::passkeys(3, false, 11);
  CHECK(std::vector<std::string>(keys.begin() + 5, keys.end()) == drawn);  // the draws continue where the five end
  CHECK(niah::passkeys(3, false, 12) != drawn);
  engine::Rng rng(5);
  int64_t lo = 1 << 30, hi = 0;
  for (int i = 0; i < 200000; ++i) {
    const int64_t k = niah::draw_passkey(rng);
    lo = std::min(lo, k), hi = std::max(hi, k);
  }
  CHECK(lo == 1);  // randint(1, 50000): 1..49999
  CHECK(hi == 49999);
}

TEST_CASE("niah: RULER needles are adjective-noun keys and 7-digit values, the same for a seed") {
  const auto a = niah::needles(500, 3), b = niah::needles(20, 3);
  CHECK(std::equal(b.begin(), b.end(), a.begin(), [](auto& x, auto& y) { return x.key == y.key && x.value == y.value; }));
  std::set<std::string> keys;
  for (const auto& n : a) {
    const size_t dash = n.key.find('-');
    REQUIRE(dash != std::string::npos);
    CHECK(n.key.find('-', dash + 1) == std::string::npos);
    CHECK(dash > 1);
    CHECK(n.key.size() - dash > 2);
    CHECK(std::all_of(n.key.begin(), n.key.end(), [](char c) { return c == '-' || (c >= 'a' && c <= 'z'); }));
    CHECK(n.value.size() == 7);
    CHECK(all_digits(n.value));
    CHECK(n.value[0] != '0');
    keys.insert(n.key);
  }
  CHECK(keys.size() > 480);  // 10,000 keys: 500 draws rarely repeat (about 12 expected)
  CHECK(niah::needle_sentence({"quiet-harbor", "1234567"}) == "One of the special magic numbers for quiet-harbor is: 1234567.");
}

TEST_CASE("niah: the sniah1 prompt is RULER's single-needle template on the repeated haystack") {
  const niah::Needle needle{"quiet-harbor", "1234567"};
  const std::string head =
      "A special magic number is hidden within the following text. Make sure to memorize it. I will quiz you about the "
      "number afterwards.\n";
  const std::string tail =
      "\nWhat is the special magic number for quiet-harbor mentioned in the provided text? The special magic number for "
      "quiet-harbor mentioned in the provided text is";
  const std::string N = "One of the special magic numbers for quiet-harbor is: 1234567.";
  const auto hay = niah::Haystack::repeat();
  // sentences.insert(floor(n * depth / 100), needle); "\n".join(sentences)
  CHECK(niah::ruler_prompt(hay, 4, 50, needle) == head + F + "\n" + F + "\n" + N + "\n" + F + "\n" + F + tail);
  CHECK(niah::ruler_prompt(hay, 4, 0, needle) == head + N + "\n" + F + "\n" + F + "\n" + F + "\n" + F + tail);
  CHECK(niah::ruler_prompt(hay, 4, 100, needle) == head + F + "\n" + F + "\n" + F + "\n" + F + "\n" + N + tail);
  CHECK(niah::ruler_prompt(hay, 10, 30, needle) == head + niah::Haystack::repeat().context(10, 30, N) + tail);
  CHECK(niah::Haystack::repeat().context(10, 30, N).find(N) == 3 * (F.size() + 1));
}

TEST_CASE("niah: the sniah2 haystack is the text's words, the needle between sentences") {
  const auto hay = niah::Haystack::essay("One two.  Three four five!\n\"Six?\" seven");
  CHECK(hay.size() == 7);
  // sentences: [One two.] [Three four five!] ["Six?"] [seven]: the needle goes before sentence floor(4 d / 100)
  CHECK(hay.context(7, 0, "N") == "N One two. Three four five! \"Six?\" seven");
  CHECK(hay.context(7, 25, "N") == "One two. N Three four five! \"Six?\" seven");
  CHECK(hay.context(7, 50, "N") == "One two. Three four five! N \"Six?\" seven");
  CHECK(hay.context(7, 100, "N") == "One two. Three four five! \"Six?\" seven N");
  CHECK(hay.context(3, 50, "N") == "One two. N Three");  // a last sentence without its stop counts
  CHECK(hay.context(9, 0, "N") == "N One two. Three four five! \"Six?\" seven One two.");  // repeated
  CHECK(hay.context(2, 0, "N", 2) == "N Three four");                                      // from word 2
  CHECK(hay.context(0, 50, "N") == "N");
  CHECK_THROWS_AS(niah::Haystack::essay(" \n\t "), std::invalid_argument);
  CHECK_THROWS_AS(hay.context(7, 101, "N"), std::invalid_argument);
}

TEST_CASE("niah: RULER prompts hold the most haystack that fits the token budget") {
  const niah::Needle needle{"quiet-harbor", "1234567"};
  const std::vector<niah::Haystack> haystacks = {
      niah::Haystack::repeat(),
      niah::Haystack::essay(data::documents_text({data::data_dir() + "/moby-dick/chapter_1.txt"}))};
  for (const niah::Haystack& hay : haystacks) {
    for (int64_t budget : {200, 1000, 4000}) {
      const int64_t n = niah::ruler_units(hay, p50k(), budget, needle);
      CAPTURE(budget);
      REQUIRE(n > 0);
      CHECK(int64_t(p50k().encode_ordinary(niah::ruler_prompt(hay, n, 50, needle)).size()) <= budget);
      CHECK(int64_t(p50k().encode_ordinary(niah::ruler_prompt(hay, n + 1, 50, needle)).size()) > budget);
    }
    CHECK(niah::ruler_units(hay, p50k(), 40, needle) == 0);  // the template alone is longer
  }
}

TEST_CASE("niah: scoring is the reference's exact match after strip, and RULER's case-blind substring") {
  CHECK(niah::passkey_correct(" 2733", "2733"));
  CHECK(niah::passkey_correct("2733\n", "2733"));
  CHECK(niah::passkey_correct("\t2733 ", "2733"));
  CHECK_FALSE(niah::passkey_correct("27330", "2733"));
  CHECK_FALSE(niah::passkey_correct(" 273", "2733"));
  CHECK_FALSE(niah::passkey_correct(" 2733.", "2733"));
  CHECK_FALSE(niah::passkey_correct("", "2733"));
  CHECK(niah::ruler_correct(" 1234567.", "1234567"));
  CHECK(niah::ruler_correct(": the number 1234567 is", "1234567"));
  CHECK(niah::ruler_correct("QUIET-Harbor", "quiet-harbor"));
  CHECK_FALSE(niah::ruler_correct(" 123456.", "1234567"));
  CHECK_FALSE(niah::ruler_correct(" 1234 567", "1234567"));
  CHECK(niah::strip(" \n a b \r\n") == "a b");
}

TEST_CASE("niah: a passkey answer is the tokens of \" \" + key, the reference's count on its keys") {
  // The reference generates len(encode(key)) tokens; the answer follows the prompt as " " + key.
  // On the reference's five keys the two counts agree; on 2,962 of the keys 1..49999 they do not
  // ("362" is one token, " 362" two: " 36", "2"), where the reference's count cuts the answer short.
  for (const std::string& k : niah::passkeys(5, true, 0))
    CHECK(niah::passkey_new_tokens(p50k(), k) == int64_t(p50k().encode_ordinary(k).size()));
  int differ = 0;
  for (int key = 1; key < 50000; ++key) {
    const std::string k = std::to_string(key);
    differ += niah::passkey_new_tokens(p50k(), k) != int64_t(p50k().encode_ordinary(k).size());
  }
  CHECK(differ == 2962);
  CHECK(niah::passkey_new_tokens(p50k(), "362") == 2);
  const auto bytes = data::load_tokenizer("bytes");
  CHECK(niah::passkey_new_tokens(*bytes, "2733") == 5);
}

TEST_CASE("niah: training needle documents are short prompts followed by their answer") {
  const std::string text = data::documents_text({data::data_dir() + "/moby-dick/chapter_1.txt"});
  niah::NeedleDocuments docs(p50k(), 512, text, 7);
  for (niah::Task kind : {niah::Task::Passkey, niah::Task::Sniah1, niah::Task::Sniah2}) {
    CAPTURE(niah::name_of(kind));
    size_t shortest = 1 << 20, longest = 0;
    for (int i = 0; i < 40; ++i) {
      const std::vector<int32_t> ids = docs.document(kind).ids;
      shortest = std::min(shortest, ids.size()), longest = std::max(longest, ids.size());
      REQUIRE(ids.size() <= 511);  // with the end-of-text before it, one window of 512
      const std::string doc = p50k().decode(ids);
      if (kind == niah::Task::Passkey) {
        const size_t at = doc.find("\nThe pass key is ");
        REQUIRE(at != std::string::npos);
        const std::string key = doc.substr(at + 17, doc.find('\n', at + 1) - at - 17);
        CHECK(all_digits(key));
        CHECK(doc.starts_with("\n"));
        CHECK(doc.ends_with("\nThe pass key is " + key));
      } else {
        const size_t at = doc.find("One of the special magic numbers for ");
        REQUIRE(at != std::string::npos);
        const size_t colon = doc.find(" is: ", at);
        const std::string key = doc.substr(at + 37, colon - at - 37), value = doc.substr(colon + 5, 7);
        CHECK(all_digits(value));
        CHECK(doc.starts_with("A special magic number is hidden"));
        CHECK(doc.ends_with("What is the special magic number for " + key +
                            " mentioned in the provided text? The special magic number for " + key +
                            " mentioned in the provided text is " + value + "."));
        CHECK((kind == niah::Task::Sniah1) == (doc.find(F) != std::string::npos));
      }
    }
    CHECK(shortest < 250);  // sizes drawn in [128, 512)
    CHECK(longest > 420);
  }
  niah::NeedleDocuments a(p50k(), 512, text, 9), b(p50k(), 512, text, 9);
  CHECK(a.document(niah::Task::Sniah2).ids == b.document(niah::Task::Sniah2).ids);
  niah::NeedleDocuments tight(p50k(), 64, text, 9);
  CHECK(tight.document(niah::Task::Passkey).ids.size() <= 63);
  CHECK_THROWS_WITH_AS(tight.document(niah::Task::Sniah1).ids, doctest::Contains("--seq-len 64"), std::invalid_argument);
  // each document ends with its answer, as many ids as the answer has on its own
  niah::NeedleDocuments answered(p50k(), 512, text, 5);
  for (niah::Task kind : {niah::Task::Passkey, niah::Task::Sniah1, niah::Task::Sniah2}) {
    const niah::NeedleDocuments::Document d = answered.document(kind);
    REQUIRE(d.answer_tokens > 0);
    const std::string doc = p50k().decode(d.ids);
    const std::string answer = p50k().decode(std::vector<int32_t>(d.ids.end() - d.answer_tokens, d.ids.end()));
    const std::string before = p50k().decode(std::vector<int32_t>(d.ids.begin(), d.ids.end() - d.answer_tokens));
    CHECK(before.ends_with(" is"));
    CHECK(answer.starts_with(" "));
    CHECK(all_digits(kind == niah::Task::Passkey ? answer.substr(1) : answer.substr(1, answer.size() - 2)));
  }
  // --shortest: sizes drawn in [24, 512); a passkey prompt without filler has about 16 tokens
  niah::NeedleDocuments easy(p50k(), 512, text, 9, 24);
  size_t smallest = 1 << 20;
  for (int i = 0; i < 40; ++i) smallest = std::min(smallest, easy.document(niah::Task::Passkey).ids.size());
  CHECK(smallest < 64);
  CHECK_THROWS_WITH_AS(niah::NeedleDocuments(p50k(), 512, text, 9, 512), doctest::Contains("within 1..511"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(niah::NeedleDocuments(p50k(), 512, text, 9, -1), doctest::Contains("within 1..511"),
                       std::invalid_argument);
}

TEST_CASE("niah: mixing puts each needle document at the start of a loader window, the corpus around them") {
  const std::string text = data::documents_text({data::data_dir() + "/moby-dick/chapter_1.txt"});
  std::vector<uint32_t> corpus(5000);
  // Ids beyond the vocabulary that say where they came from (the mixer does not look at them).
  for (size_t i = 0; i < corpus.size(); ++i) corpus[i] = uint32_t(60000 + i);
  niah::NeedleDocuments docs(p50k(), 128, text, 1);
  niah::MixOptions opt;
  opt.seq_len = 128;
  opt.share = 0.5;
  opt.seed = 4;
  const uint32_t eot = uint32_t(p50k().eot());
  niah::MixResult r = niah::mix_needles(corpus, docs, opt, eot);
  const size_t T = 128, slots = r.tokens.size() / T;
  REQUIRE(r.tokens.size() % T == 0);
  uint32_t expect = 60000;  // the next corpus id: read in order, from the start again at the end
  int64_t needle_slots = 0, needle_tokens = 0;
  for (size_t w = 0; w < slots; ++w) {
    size_t i = w * T;
    if (r.tokens[i] == eot) {  // end-of-text, a document (no corpus id, no end-of-text), then corpus
      ++needle_slots;
      size_t j = i + 1;
      while (j < i + T && r.tokens[j] < 60000) ++j;
      std::vector<int32_t> doc(r.tokens.begin() + long(i) + 1, r.tokens.begin() + long(j));
      needle_tokens += int64_t(doc.size());
      const std::string s = p50k().decode(doc);
      CHECK((s.starts_with("\n") || s.starts_with("A special magic number")));  // a passkey prompt's first line is empty
      CHECK(std::find(doc.begin(), doc.end(), int32_t(eot)) == doc.end());
      i = j;
    }
    for (; i < (w + 1) * T; ++i) {
      REQUIRE(r.tokens[i] == expect);
      expect = expect + 1 == 65000 ? 60000 : expect + 1;
    }
  }
  CHECK(needle_slots == r.documents[0] + r.documents[1] + r.documents[2]);
  CHECK(needle_tokens == r.needle_tokens);
  CHECK(std::abs(r.documents[0] - r.documents[1]) <= 1);  // kinds in turn
  CHECK(std::abs(r.documents[1] - r.documents[2]) <= 1);
  CHECK(double(needle_slots) / double(slots) > 0.35);
  CHECK(double(needle_slots) / double(slots) < 0.65);
  CHECK(r.corpus_tokens >= 5000);  // the corpus once: the last slot wraps around
  CHECK(r.corpus_tokens < 5000 + 128);
  CHECK(int64_t(r.tokens.size()) == r.corpus_tokens + r.needle_tokens + needle_slots);

  opt.tokens = 40 * 128;  // a given size: whole slots, the corpus repeated
  opt.share = 1;
  niah::MixResult all = niah::mix_needles(corpus, docs, opt, eot);
  CHECK(all.tokens.size() == 40 * 128);
  CHECK(all.documents[0] + all.documents[1] + all.documents[2] == 40);
  opt.tokens = 0;
  CHECK_THROWS_AS(niah::mix_needles(corpus, docs, opt, eot), std::invalid_argument);  // share 1 never ends
}

TEST_CASE("niah: --fill puts needle documents back to back in a window while one still fits") {
  const std::string text = data::documents_text({data::data_dir() + "/moby-dick/chapter_1.txt"});
  std::vector<uint32_t> corpus(5000);
  for (size_t i = 0; i < corpus.size(); ++i) corpus[i] = uint32_t(60000 + i);
  const int64_t T = 256, shortest = 24;
  niah::NeedleDocuments docs(p50k(), T, text, 3, shortest);
  niah::MixOptions opt;
  opt.seq_len = T;
  opt.share = 1;
  opt.fill = true;
  opt.kinds = {niah::Task::Passkey};
  opt.tokens = 60 * T;
  const uint32_t eot = uint32_t(p50k().eot());
  const niah::MixResult r = niah::mix_needles(corpus, docs, opt, eot);
  REQUIRE(int64_t(r.tokens.size()) == 60 * T);
  int64_t documents = 0, needle_tokens = 0;
  for (int64_t w = 0; w < 60; ++w) {
    int64_t i = w * T;
    REQUIRE(r.tokens[size_t(i)] == eot);  // every window starts a document
    while (i < (w + 1) * T && r.tokens[size_t(i)] == eot) {  // documents: an end-of-text, the prompt, the key
      int64_t j = i + 1;
      while (j < (w + 1) * T && r.tokens[size_t(j)] < 60000 && r.tokens[size_t(j)] != eot) ++j;
      const std::string doc = p50k().decode(std::vector<int32_t>(r.tokens.begin() + i + 1, r.tokens.begin() + j));
      const size_t at = doc.find("\nThe pass key is ");
      REQUIRE(at != std::string::npos);
      CHECK(doc.ends_with("\nThe pass key is" + doc.substr(at + 16, doc.find('\n', at + 1) - at - 16)));
      ++documents, needle_tokens += j - i - 1;
      i = j;
    }
    CHECK((w + 1) * T - i < shortest + 1);  // the corpus rest is too short for another document
    for (; i < (w + 1) * T; ++i) CHECK(r.tokens[size_t(i)] >= 60000);
  }
  CHECK(documents == r.documents[0]);
  CHECK(needle_tokens == r.needle_tokens);
  CHECK(documents > 2 * 60);  // several in a window (one each without --fill)
}
