// `avey tokenize`: text to token ids (space-separated on one line), or with --decode ids to text.
//   avey tokenize --text "Hello world"        -> 15496 995
//   avey tokenize --file notes.txt --tokenizer bytes
//   avey tokenize --decode --text "15496 995" -> Hello world
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "data/tokenizer.h"

namespace {

// Ids separated by spaces or commas ("15496 995", "15496, 995").
std::vector<int32_t> parse_ids(std::string text) {
  std::replace(text.begin(), text.end(), ',', ' ');
  std::vector<int32_t> ids;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    int32_t id = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec != std::errc() || end != word.data() + word.size())
      throw UsageError(fmt::format("avey tokenize: '{}' is not a token id", word));
    ids.push_back(id);
  }
  return ids;
}

int run_tokenize(int argc, char** argv) {
  Args args("tokenize", "Print the token ids of a text (or, with --decode, the text of token ids).");
  args.option("text", "STR", "the text (or ids) to convert");
  args.option("file", "PATH", "read the text (or ids) from a file instead");
  args.option("tokenizer", "NAME", "p50k, r50k or bytes", "p50k");
  args.flag("decode", "read token ids, print the text they stand for");
  args.flag("ordinary", "encode <|endoftext|> as plain text, not as the special token");
  if (!args.parse(argc, argv)) return 0;
  if (args.given("text") == args.given("file")) throw UsageError("avey tokenize: give exactly one of --text and --file");

  std::string input = args.given("text") ? args.str("text") : "";
  if (args.given("file")) {
    std::ifstream in(args.str("file"), std::ios::binary);
    if (!in) throw UsageError("avey tokenize: cannot read " + args.str("file"));
    std::stringstream text;
    text << in.rdbuf();
    input = text.str();
  }
  auto tok = data::load_tokenizer(args.str("tokenizer"));
  if (args.on("decode")) {
    std::string text = tok->decode(parse_ids(input));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  auto ids = args.on("ordinary") ? tok->encode_ordinary(input) : tok->encode(input);
  fmt::print("{}\n", fmt::join(ids, " "));
  return 0;
}

const RegisterCommand reg{{"tokenize", "print the token ids of a text, or decode ids", run_tokenize}};

}  // namespace
