// Preparing data: text files and JSON lines read as documents in pieces, tokenised on many
// threads into exactly the ids of a plain one-document-at-a-time encode, and the train/validation
// split of a data path (corpus names, shards with llm.c's val names, text; the errors).
#include "tests/testing.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/data_dir.h"
#include "data/documents.h"
#include "data/paths.h"
#include "data/shard.h"
#include "data/splits.h"
#include "data/tokenized_files.h"
#include "data/tokenizer.h"

namespace fs = std::filesystem;

using testing::error_of;
using testing::TempDir;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<data::TextPiece> all_pieces(data::DocumentReader& reader) {
  std::vector<data::TextPiece> out;
  for (data::TextPiece p; reader.next(p);) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("documents: a text file is one document, a JSON line another, long ones come in pieces") {
  TempDir dir("documents");
  dir.file("a.txt", "First document.");
  dir.file("b.jsonl", "{\"text\": \"Second \\u00e9.\", \"id\": 1}\n\n   \n{\"text\": \"\"}\n{\"text\": \"Third one, a little longer.\"}");
  dir.file("empty.txt", "");
  data::DocumentReader reader({dir.file("a.txt"), dir.file("b.jsonl"), dir.file("empty.txt")});
  CHECK(reader.total_bytes() == 15 + fs::file_size(dir.file("b.jsonl")));
  std::vector<data::TextPiece> pieces = all_pieces(reader);
  REQUIRE(pieces.size() == 5);
  CHECK(pieces[0].text == "First document.");
  CHECK(pieces[1].text == "Second \xc3\xa9.");
  CHECK(pieces[2].text.empty());  // an empty document is still a document
  CHECK(pieces[3].text == "Third one, a little longer.");
  CHECK(pieces[4].text.empty());
  for (const auto& p : pieces) CHECK(p.starts_document);
  CHECK(reader.files_done() == 3);

  // Small pieces: every document is cut at "letter space letter" places, and joins back whole.
  data::DocumentReader small({dir.file("a.txt"), dir.file("b.jsonl")}, 8);
  pieces = all_pieces(small);
  std::vector<std::string> docs;
  for (const auto& p : pieces) {
    if (p.starts_document) docs.emplace_back();
    docs.back() += p.text;
    CHECK((p.starts_document || p.text[0] == ' '));
  }
  CHECK(pieces.size() > 5);
  CHECK(docs == std::vector<std::string>{"First document.", "Second \xc3\xa9.", "", "Third one, a little longer."});

  dir.file("bad.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n");
  data::DocumentReader bad({dir.file("bad.jsonl")});
  CHECK(error_of([&] { all_pieces(bad); }) == dir.file("bad.jsonl") + ":2: expected a JSON object with a \"text\" string");
  dir.file("broken.jsonl", "{\"text\": \"unterminated\n");
  data::DocumentReader broken({dir.file("broken.jsonl")});
  CHECK(error_of([&] { all_pieces(broken); }) == dir.file("broken.jsonl") + ":1: expected a JSON object with a \"text\" string");
  CHECK(error_of([&] { data::DocumentReader({dir.file("missing.txt")}); }) == "cannot read text file " + dir.file("missing.txt"));
}

TEST_CASE("tokenising on many threads gives the ids of one document at a time, whatever the threads and pieces") {
  // Moby Dick's chapters plus the whole book as JSON lines (one line per chapter).
  TempDir dir("tokenize");
  std::vector<std::string> chapters = data::expand_path(data::data_dir() + "/moby-dick", {".txt"});
  chapters.erase(std::remove_if(chapters.begin(), chapters.end(), [](const std::string& f) { return f.find("data.txt") != std::string::npos; }),
                 chapters.end());
  {
    std::ofstream jsonl(dir.file("book.jsonl"));
    for (size_t i = 0; i < 20; ++i) jsonl << nlohmann::json{{"text", read_all(chapters[i])}}.dump() << "\n";
  }
  std::vector<std::string> files = chapters;
  files.push_back(dir.file("book.jsonl"));
  files.push_back(data::data_dir() + "/moby-dick/data.txt");  // one 1.2 MB document
  for (std::string name : {"p50k", "bytes"}) {
    auto tok = data::load_tokenizer(name);
    std::vector<uint32_t> expected;
    auto add = [&](const std::string& text) {
      expected.push_back(uint32_t(tok->eot()));
      for (int32_t id : tok->encode_ordinary(text)) expected.push_back(uint32_t(id));
    };
    for (const auto& f : chapters) add(read_all(f));
    for (size_t i = 0; i < 20; ++i) add(read_all(chapters[i]));
    add(read_all(files.back()));
    for (int threads : {1, 3})
      for (size_t piece : {size_t(1000), size_t(1) << 20}) {
        INFO(name << ", " << threads << " threads, pieces of " << piece << " bytes");
        data::TokenizeOptions options;
        options.threads = threads, options.max_piece = piece, options.batch_bytes = 300000;
        data::TokenizedFiles stream(*tok, files, options);
        std::vector<uint32_t> ids(expected.size() + 10);
        size_t n = 0;
        while (size_t got = stream.read(ids.data() + n, std::min<size_t>(777, ids.size() - n))) n += got;
        CHECK(n == expected.size());
        ids.resize(n);
        CHECK(ids == expected);
        CHECK(stream.at_end());
        CHECK(stream.tokens() == expected.size());
      }
    CHECK(data::tokenize_files(*tok, files) == expected);
  }
}

TEST_CASE("data paths: corpus names, shards (llm.c val names or the last 10%) and text, each split in two") {
  TempDir dir("splits");
  data::ByteTokenizer bytes;
  std::vector<uint32_t> ids(1000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint32_t(i % 250);
  fs::create_directories(dir.path / "named");
  data::write_shard(dir.file("named/web_train_000001.bin"), "bytes", std::vector<uint32_t>(ids.begin(), ids.begin() + 600));
  data::write_shard(dir.file("named/web_train_000002.bin"), "bytes", std::vector<uint32_t>(ids.begin() + 600, ids.begin() + 900));
  data::write_shard(dir.file("named/web_val_000000.bin"), "bytes", std::vector<uint32_t>(ids.begin() + 900, ids.end()));
  data::DataSplit s = data::open_data(dir.file("named"), bytes, false);
  CHECK(s.train.read(0, s.train.size()) == std::vector<uint32_t>(ids.begin(), ids.begin() + 900));
  CHECK(s.val.read(0, s.val.size()) == std::vector<uint32_t>(ids.begin() + 900, ids.end()));
  s = data::open_data(dir.file("named/*train*.bin"), bytes, false);  // no val file: the last 10%
  CHECK(s.train.size() == 810);
  CHECK(s.val.read(0, 90) == std::vector<uint32_t>(ids.begin() + 810, ids.begin() + 900));
  CHECK(data::is_validation_name("a/fineweb_val_000000.bin"));
  CHECK(data::is_validation_name("tinyshakespeare-Validation.bin"));
  CHECK_FALSE(data::is_validation_name("interval_3.bin"));

  dir.file("text.txt", std::string(300, 'x'));
  s = data::open_data(dir.file("text.txt"), bytes, false);
  CHECK(s.train.size() == 271);  // end-of-text + 300 bytes, 10% of it validates
  CHECK(s.val.size() == 30);

  dir.file("named/notes.txt", "text");
  CHECK(error_of([&] { data::open_data(dir.file("named"), bytes, false); }) == dir.file("named") + " mixes shards (*.bin) and text files; give one kind");
  auto p50k = data::load_tokenizer("p50k");
  CHECK(error_of([&] { data::open_data(dir.file("named/web_train_000001.bin"), *p50k, false); }) ==
        dir.file("named/web_train_000001.bin") + " holds bytes ids but the run's tokenizer is p50k (train with --tokenizer bytes)");
  dir.file("tiny.txt", "abcdefghi");
  CHECK(error_of([&] { data::open_data(dir.file("tiny.txt"), bytes, false); }) ==
        dir.file("tiny.txt") + ": the validation set has 1 tokens; it needs at least 2 (one to predict)");
  CHECK(data::open_data("moby-dick", *p50k, false).val.size() == 27470);
}

TEST_CASE("the research corpus: every 10th document of each source validates, a missing source names the fetch command") {
  TempDir dir("research");
  struct DataDirFor {  // AVEY_DATA_DIR points at the test's folder until the end of the test
    const char* old = std::getenv("AVEY_DATA_DIR");
    std::string saved = old ? old : "";
    explicit DataDirFor(const fs::path& p) { ::setenv("AVEY_DATA_DIR", p.c_str(), 1); }
    ~DataDirFor() { old ? ::setenv("AVEY_DATA_DIR", saved.c_str(), 1) : ::unsetenv("AVEY_DATA_DIR"); }
  } data_dir(dir.path);
  fs::create_directories(dir.path / "moby-dick");
  for (const char* f : {"etymology", "extracts", "epilogue"}) dir.file(std::string("moby-dick/") + f + ".txt", f);
  for (int c = 1; c <= 135; ++c) dir.file("moby-dick/chapter_" + std::to_string(c) + ".txt", "chapter");
  fs::create_directories(dir.path / "sotu");
  std::string error = error_of([] { data::corpus_files("research"); });
  for (const char* source : {"sotu", "factbook"}) {
    fs::create_directories(dir.path / source);
    dir.file(std::string(source) + "/SHA256SUMS", "");
    for (int i = 1; i <= 25; ++i) dir.file(std::string(source) + "/doc_" + std::to_string(i) + ".txt", "text");
  }
  data::CorpusSplit split = data::corpus_files("research");
  CHECK(error == "the research corpus is missing " + (dir.path / "sotu").string() + " (run scripts/fetch-data --research)");
  CHECK(split.train.size() + split.val.size() == 138 + 25 + 25);
  CHECK(split.val.size() == 13 + 2 + 2);
  CHECK(fs::path(split.val[0]).filename() == "chapter_8.txt");  // etymology, extracts, chapters 1-8: the 10th
  CHECK(fs::path(split.val[13]).filename() == "doc_10.txt");
  CHECK(split.val[13].find("/sotu/") != std::string::npos);
  CHECK(fs::path(split.val[16]).filename() == "doc_20.txt");
  CHECK(split.val[16].find("/factbook/") != std::string::npos);
}
