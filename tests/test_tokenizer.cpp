// Tokenizer tests. The p50k and r50k cases compare with OpenAI's tiktoken: every p50k_base and
// r50k_base case of TestPlans.txt (the public test vectors fetched with the ranks), and our own
// cases whose expected ids came from gpt-tokenizer 4.0.0, a port verified against tiktoken.
// Tests that need the fetched files fail with "run scripts/fetch-data" when they are missing.
#include "tests/testing.h"
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/data_dir.h"
#include "data/paths.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"

using testing::error_of;
using testing::TempDir;

namespace {

using Ids = std::vector<int32_t>;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, path << " is missing (run scripts/fetch-data)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// A rank file of the 256 single bytes (ranks 0..255) plus extra "base64 rank" lines.
std::string tiny_ranks(const std::string& extra) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  for (int b = 0; b < 256; ++b)
    text += std::string{alphabet[b >> 2], alphabet[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  return text + extra;
}

}  // namespace

TEST_CASE("tokenizer: every p50k_base and r50k_base case of TestPlans.txt") {
  auto p50k = data::load_tokenizer("p50k");
  auto r50k = data::load_tokenizer("r50k");
  std::istringstream plans(read_all(data::data_dir() + "/TestPlans.txt"));
  std::string encoding, sample, encoded;
  int checked_p50k = 0, checked_r50k = 0;
  while (std::getline(plans, encoding)) {
    if (encoding.rfind("EncodingName: ", 0) != 0) continue;
    REQUIRE(std::getline(plans, sample));
    REQUIRE(std::getline(plans, encoded));
    REQUIRE(sample.rfind("Sample: ", 0) == 0);
    REQUIRE(encoded.rfind("Encoded: [", 0) == 0);
    sample = sample.substr(8);
    std::string name = encoding.substr(14);
    const data::Tokenizer* tok = name == "p50k_base" ? p50k.get() : name == "r50k_base" ? r50k.get() : nullptr;
    if (!tok) continue;
    Ids expected;
    std::string list = encoded.substr(10);
    for (char& c : list) if (c == ',' || c == ']') c = ' ';
    std::istringstream ids(list);
    for (int32_t id; ids >> id;) expected.push_back(id);
    INFO(name << " sample: " << sample);
    CHECK(tok->encode_ordinary(sample) == expected);
    CHECK(tok->encode(sample) == expected);
    CHECK(tok->decode(expected) == sample);
    ++(tok == p50k.get() ? checked_p50k : checked_r50k);
  }
  CHECK(checked_p50k == 64);
  CHECK(checked_r50k == 64);
}

TEST_CASE("tokenizer: spaces, newlines, digits, contractions, Unicode letters, emoji, <|endoftext|> as text") {
  struct Case {
    const char* what;
    std::string text;
    Ids p50k, r50k;
  };
  const std::vector<Case> cases = {
    {"runs of spaces", "a  b   c    d", {64, 220, 275, 50257, 269, 50258, 288}, {64, 220, 275, 220, 220, 269, 220, 220, 220, 288}},
    {"runs of spaces", "hi   ", {5303, 50258}, {5303, 220, 220, 220}},
    {"runs of spaces", "   ", {50258}, {220, 220, 220}},
    {"runs of spaces", " \t  x", {220, 197, 220, 2124}, {220, 197, 220, 2124}},
    {"runs of spaces", "x                              y", {87, 50271, 50268, 331}, {87, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 220, 331}},
    {"newlines", "line1\nline2\n\n\nline3\r\n", {1370, 16, 198, 1370, 17, 628, 198, 1370, 18, 201, 198}, {1370, 16, 198, 1370, 17, 628, 198, 1370, 18, 201, 198}},
    {"newlines", "\n\n\n\n", {628, 628}, {628, 628}},
    {"newlines", "a\n  b\n\tc", {64, 198, 220, 275, 198, 197, 66}, {64, 198, 220, 275, 198, 197, 66}},
    {"digits", "1234567890 3.14159 1,000,000 2024-01-01", {10163, 2231, 30924, 3829, 513, 13, 1415, 19707, 352, 11, 830, 11, 830, 48609, 12, 486, 12, 486}, {10163, 2231, 30924, 3829, 513, 13, 1415, 19707, 352, 11, 830, 11, 830, 48609, 12, 486, 12, 486}},
    {"digits", "x42y007", {87, 3682, 88, 25816}, {87, 3682, 88, 25816}},
    {"contractions", "I'm you're they've we'll he'd it's don't 'S", {40, 1101, 345, 821, 484, 1053, 356, 1183, 339, 1549, 340, 338, 836, 470, 705, 50}, {40, 1101, 345, 821, 484, 1053, 356, 1183, 339, 1549, 340, 338, 836, 470, 705, 50}},
    {"unicode letters", "naïve café Straße Ελληνικά русский 日本語 한국어 العربية", {2616, 38776, 40304, 15195, 39683, 68, 7377, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105, 220, 21169, 35072, 21727, 21727, 31583, 18849, 140, 117, 10545, 245, 98, 17312, 105, 45739, 252, 220, 47991, 250, 166, 113, 255, 168, 244, 112, 28981, 44690, 26897, 39848, 22654, 45632}, {2616, 38776, 40304, 15195, 39683, 68, 7377, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105, 220, 21169, 35072, 21727, 21727, 31583, 18849, 140, 117, 10545, 245, 98, 17312, 105, 45739, 252, 220, 47991, 250, 166, 113, 255, 168, 244, 112, 28981, 44690, 26897, 39848, 22654, 45632}},
    {"emoji", "👋🏽 family: 👨‍👩‍👧‍👦 flags 🇯🇵!", {41840, 233, 8582, 237, 121, 1641, 25, 50169, 101, 447, 235, 41840, 102, 447, 235, 41840, 100, 447, 235, 41840, 99, 9701, 12520, 229, 107, 8582, 229, 113, 0}, {41840, 233, 8582, 237, 121, 1641, 25, 50169, 101, 447, 235, 41840, 102, 447, 235, 41840, 100, 447, 235, 41840, 99, 9701, 12520, 229, 107, 8582, 229, 113, 0}},
    {"endoftext as text", "Hello<|endoftext|>world", {15496, 27, 91, 437, 1659, 5239, 91, 29, 6894}, {15496, 27, 91, 437, 1659, 5239, 91, 29, 6894}},
    {"endoftext as text", "<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}, {27, 91, 437, 1659, 5239, 91, 29}},
  };
  auto p50k = data::load_tokenizer("p50k");
  auto r50k = data::load_tokenizer("r50k");
  for (const auto& c : cases) {
    INFO(c.what << ": '" << c.text << "'");
    CHECK(p50k->encode_ordinary(c.text) == c.p50k);
    CHECK(r50k->encode_ordinary(c.text) == c.r50k);
    CHECK(p50k->decode(c.p50k) == c.text);
  }
}

TEST_CASE("tokenizer: long pieces (the heap merge) match tiktoken") {
  auto p50k = data::load_tokenizer("p50k");
  CHECK(p50k->encode_ordinary(std::string(300, ' ') + "x") ==
        Ids{50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271, 50271,
            50271, 50271, 50271, 50271, 50266, 2124});
  Ids dashes(12, 46402);
  dashes.push_back(27584);
  CHECK(p50k->encode_ordinary(repeat("=-", 100)) == dashes);
  CHECK(p50k->encode_ordinary(repeat("pneumonoultramicroscopicsilicovolcanoconiosis", 7)) == Ids{
      79, 25668, 261, 25955, 859, 2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802,
      25668, 261, 25955, 859, 2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802, 25668,
      261, 25955, 859, 2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802, 25668, 261,
      25955, 859, 2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802, 25668, 261, 25955,
      859, 2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802, 25668, 261, 25955, 859,
      2500, 1416, 404, 873, 41896, 709, 349, 5171, 36221, 4267, 8802, 25668, 261, 25955, 859, 2500,
      1416, 404, 873, 41896, 709, 349, 5171, 36221, 42960});
  CHECK(p50k->encode_ordinary(repeat("31415926535897932384626433832795028841971693993751", 8)) == Ids{
      33638, 19707, 22980, 2327, 4531, 44750, 23721, 3510, 18897, 2091, 5999, 26050, 1120, 2078,
      5705, 24991, 1433, 6052, 2079, 22318, 1485, 1415, 19707, 22980, 2327, 4531, 44750, 23721,
      3510, 18897, 2091, 5999, 26050, 1120, 2078, 5705, 24991, 1433, 6052, 2079, 22318, 1485, 1415,
      19707, 22980, 2327, 4531, 44750, 23721, 3510, 18897, 2091, 5999, 26050, 1120, 2078, 5705,
      24991, 1433, 6052, 2079, 22318, 1485, 1415, 19707, 22980, 2327, 4531, 44750, 23721, 3510,
      18897, 2091, 5999, 26050, 1120, 2078, 5705, 24991, 1433, 6052, 2079, 22318, 1485, 1415, 19707,
      22980, 2327, 4531, 44750, 23721, 3510, 18897, 2091, 5999, 26050, 1120, 2078, 5705, 24991,
      1433, 6052, 2079, 22318, 1485, 1415, 19707, 22980, 2327, 4531, 44750, 23721, 3510, 18897,
      2091, 5999, 26050, 1120, 2078, 5705, 24991, 1433, 6052, 2079, 22318, 1485, 1415, 19707, 22980,
      2327, 4531, 44750, 23721, 3510, 18897, 2091, 5999, 26050, 1120, 2078, 5705, 24991, 1433, 6052,
      2079, 22318, 1485, 1415, 19707, 22980, 2327, 4531, 44750, 23721, 3510, 18897, 2091, 5999,
      26050, 1120, 2078, 5705, 24991, 1433, 6052, 2079, 22318, 16});
}

TEST_CASE("tokenizer: encode() makes <|endoftext|> the special token, encode_ordinary() keeps it as text") {
  auto p50k = data::load_tokenizer("p50k");
  const std::string text = "Hello<|endoftext|>world";
  CHECK(p50k->encode(text) == Ids{15496, 50256, 6894});
  CHECK(p50k->encode_ordinary(text) == Ids{15496, 27, 91, 437, 1659, 5239, 91, 29, 6894});
  CHECK(p50k->encode("<|endoftext|><|endoftext|>") == Ids{50256, 50256});
  CHECK(p50k->decode({15496, 50256, 6894}) == text);
  data::ByteTokenizer bytes;
  CHECK(bytes.encode("a<|endoftext|>") == Ids{97, 256});
  CHECK(bytes.encode_ordinary("<|").size() == 2);
  CHECK(bytes.decode({97, 256}) == "a<|endoftext|>");
}

TEST_CASE("tokenizer: vocabulary sizes, end-of-text ids and names") {
  auto p50k = data::load_tokenizer("p50k");
  CHECK(p50k->vocab_size() == 50281);
  CHECK(p50k->eot() == 50256);
  CHECK(p50k->name() == "p50k");
  auto r50k = data::load_tokenizer("r50k");
  CHECK(r50k->vocab_size() == 50257);
  CHECK(r50k->eot() == 50256);
  auto bytes = data::load_tokenizer("bytes");
  CHECK(bytes->vocab_size() == 257);
  CHECK(bytes->eot() == 256);
  CHECK(bytes->name() == "bytes");
  CHECK(error_of([] { data::load_tokenizer("gpt5"); }) == "unknown tokenizer 'gpt5' (expected p50k, r50k or bytes)");
}

TEST_CASE("tokenizer: decode(encode(x)) == x on the whole Moby Dick corpus") {
  auto p50k = data::load_tokenizer("p50k");
  data::ByteTokenizer bytes;
  std::vector<std::string> files = data::expand_path(data::data_dir() + "/moby-dick", {".txt"});
  CHECK(files.size() == 140);
  for (const auto& path : files) {
    std::string text = read_all(path);
    INFO(path);
    CHECK(p50k->decode(p50k->encode(text)) == text);
    CHECK(bytes.decode(bytes.encode(text)) == text);
  }
  std::string whole = read_all(data::data_dir() + "/moby-dick/data.txt");
  Ids ids = p50k->encode_ordinary(whole);
  CHECK(ids.size() == 317628);  // what tiktoken's p50k_base gives
  CHECK(p50k->decode(ids) == whole);
}

TEST_CASE("tokenizer: texts cut where safe_cut says encode, piece by piece, to the ids of the whole") {
  // Moby Dick's first 300 kB cut every ~N bytes, and adversarial text: runs of spaces and newlines, digits,
  // contractions, invalid UTF-8 and non-ASCII letters around the cut points.
  std::string tricky;
  uint64_t x = 7;
  const std::vector<std::string> parts = {"a", "b", " ", "  ", "\n", "\r\n", "'s", "'ll", "9", "\xff", "\xc3\xa9", "\xe3\x80\x80", ".", "Z"};
  for (int i = 0; i < 20000; ++i) tricky += parts[((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33) % parts.size()];
  const std::vector<std::string> texts = {read_all(data::data_dir() + "/moby-dick/data.txt").substr(0, 300000), tricky};
  for (std::string name : {"p50k", "r50k", "bytes"}) {
    auto tok = data::load_tokenizer(name);
    for (const std::string& text : texts) {
      for (size_t step : {1, 7, 100, 5000}) {
        Ids pieces;
        size_t cuts = 0;
        for (size_t at = 0; at < text.size();) {
          size_t cut = data::safe_cut(text, at + step);
          Ids part = tok->encode_ordinary(std::string_view(text).substr(at, cut - at));
          pieces.insert(pieces.end(), part.begin(), part.end());
          cuts += cut < text.size();
          at = cut;
        }
        INFO(name << ", a cut every " << step << " bytes or more: " << cuts << " cuts");
        CHECK(cuts > text.size() / (step + 2000));  // the texts do have places to cut
        CHECK(pieces == tok->encode_ordinary(text));
      }
    }
  }
  CHECK(data::safe_cut("ab cd", 0) == 2);
  CHECK(data::safe_cut("ab cd", 3) == 5);
  CHECK(data::safe_cut("a  b", 0) == 4);   // two spaces: the run of spaces keeps one for the word
  CHECK(data::safe_cut("1 b c", 0) == 3);  // a digit before the space is not a letter
}

TEST_CASE("tokenizer: invalid UTF-8 and arbitrary ids round-trip as bytes") {
  auto p50k = data::load_tokenizer("p50k");
  std::vector<std::string> texts = {"\xff", "a\x80 b", "caf\xc3", "\xe2\x82", "\xc0\xaf overlong", "\xed\xa0\x80 surrogate",
                                    std::string("nul\0byte", 8), "ok \xf0\x9f\x8c emoji cut \xf0\x9f\x8c\x8d"};
  uint64_t x = 42;  // random byte strings from a fixed LCG
  for (int n = 0; n < 200; ++n) {
    std::string s;
    for (int i = 0; i < n * 3; ++i) s += static_cast<char>((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 56);
    texts.push_back(s);
  }
  for (const auto& text : texts) {
    Ids ids = p50k->encode(text);
    for (int32_t id : ids) CHECK((id >= 0 && id < p50k->vocab_size()));
    CHECK(p50k->decode(ids) == text);
  }
  Ids arbitrary;
  std::string expected;
  for (int32_t id = 0; id < p50k->vocab_size(); id += 97) {
    arbitrary.push_back(id);
    expected += p50k->decode({id});
  }
  CHECK(p50k->decode(arbitrary) == expected);
  CHECK(error_of([&] { p50k->decode({50281}); }) == "p50k tokenizer: token id 50281 is not in the vocabulary (0..50280)");
  CHECK(error_of([] { data::ByteTokenizer().decode({-1}); }) == "bytes tokenizer: token id -1 is outside 0..256");
}

TEST_CASE("tokenizer: BPE merges by rank on a tiny rank file (no fetched data needed)") {
  TempDir dir("tiny-ranks");
  // "ab" = 256, "abab" = 257, "ba" = 258 (ranks are merge priorities: "ab" is merged first)
  std::string path = dir.file("tiny.tiktoken", tiny_ranks("YWI= 256\nYWJhYg== 257\nYmE= 258\n"));
  data::BpeTokenizer tok(path, "tiny", 259);
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.encode_ordinary("abab") == Ids{257});
  CHECK(tok.encode_ordinary("bab") == Ids{98, 256});
  CHECK(tok.encode_ordinary("ba") == Ids{258});
  CHECK(tok.encode("ab<|endoftext|>") == Ids{256, 259});
  CHECK(tok.encode_ordinary(repeat("ab", 100)) == Ids(50, 257));  // 200 bytes: the heap merge
}

TEST_CASE("tokenizer: malformed rank files give one clear error line") {
  TempDir dir("bad-ranks");
  auto error = [&](const std::string& text) {
    std::string path = dir.file("bad.tiktoken", text);
    std::string message = error_of([&] { data::BpeTokenizer(path, "bad", 50256); });
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.rfind(path, 0) == 0);
    return message.substr(path.size());
  };
  CHECK(error(tiny_ranks("YWI=256\n")) == " line 257: expected 'base64-bytes rank', got 'YWI=256'");
  CHECK(error(tiny_ranks("YW*= 256\n")) == " line 257: invalid base64 'YW*='");
  CHECK(error(tiny_ranks("YWI= 25x\n")) == " line 257: rank '25x' is not an integer in 0..16777215");
  CHECK(error(tiny_ranks("YWI= 255\n")) == " line 257: rank 255 appears twice");
  CHECK(error(tiny_ranks("YWI= 50256\n")) == " line 257: rank 50256 is the end-of-text id");
  CHECK(error(tiny_ranks("QQ== 300\n")) == ": ranks 65 and 300 have the same bytes");
  CHECK(error("YWI= 0\n") == ": no token for byte 0x00 (not a byte-level BPE rank file)");
  CHECK(error("") == ": no ranks (empty rank file)");
  CHECK(error_of([] { data::BpeTokenizer("/nonexistent/p50k_base.tiktoken", "p50k", 50256); }) ==
        "cannot open tokenizer rank file /nonexistent/p50k_base.tiktoken");
}

TEST_CASE("tokenizer: a missing rank file says to run scripts/fetch-data") {
  TempDir dir("empty-data-dir");
  const char* old = std::getenv("AVEY_DATA_DIR");
  std::string saved = old ? old : "";
  setenv("AVEY_DATA_DIR", dir.path.c_str(), 1);
  std::string message = error_of([] { data::load_tokenizer("p50k"); });
  if (old) setenv("AVEY_DATA_DIR", saved.c_str(), 1);
  else unsetenv("AVEY_DATA_DIR");
  CHECK(message == "tokenizer file " + (dir.path / "p50k_base.tiktoken").string() + " is missing (run scripts/fetch-data)");
}
