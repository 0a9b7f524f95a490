// Shard, token stream and loader tests: the file formats (ours and llm.c's) and their errors,
// streams over many mapped shards, the loader's windows, shuffling and resuming, and the default
// corpus (Moby Dick) going through shard and loader unchanged.
#include "tests/testing.h"
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/loader.h"
#include "data/paths.h"
#include "data/shard.h"
#include "data/token_stream.h"
#include "data/tokenized_files.h"
#include "data/tokenizer.h"

namespace fs = std::filesystem;

using testing::error_of;
using testing::TempDir;

namespace {

std::vector<uint32_t> iota_tokens(size_t n) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>(i);
  return t;
}

// A shard as llm.c's write_datafile writes it: 256 int32 (magic, version, count, zeros), uint16 ids.
void write_llmc(const std::string& path, const std::vector<uint16_t>& ids, int32_t magic = 20240520, int32_t version = 1) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic, header[1] = version, header[2] = int32_t(ids.size());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 2));
}

// Overwrites bytes of a file at an offset.
void poke(const std::string& path, size_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(offset);
  f.write(bytes.data(), bytes.size());
}

}  // namespace

TEST_CASE("shards: write and read back uint16 and uint32 ids") {
  TempDir dir("shards");
  std::string small = dir.file("small.bin"), large = dir.file("large.bin"), empty = dir.file("empty.bin");
  std::vector<uint32_t> narrow = {0, 1, 50256, 65535}, wide = {0, 65536, 4000000000u};
  data::write_shard(small, "p50k", narrow);
  data::write_shard(large, "big-vocab", wide);
  data::write_shard(empty, "bytes", {});
  CHECK(fs::file_size(small) == 40 + 2 * narrow.size());
  CHECK(fs::file_size(large) == 40 + 4 * wide.size());
  data::Shard s = data::read_shard(small);
  CHECK(s.tokenizer == "p50k");
  CHECK(s.tokens == narrow);
  s = data::read_shard(large);
  CHECK(s.tokenizer == "big-vocab");
  CHECK(s.tokens == wide);
  CHECK(data::read_shard(empty).tokens.empty());
  data::write_shard(small, "p50k", wide);  // replaces the old file
  CHECK(data::read_shard(small).tokens == wide);
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 3);  // no temp files left
}

TEST_CASE("shards: truncated shards, wrong magic numbers and bad headers give one clear error line") {
  TempDir dir("bad-shards");
  std::string path = dir.file("s.bin");
  auto fresh = [&] { data::write_shard(path, "p50k", {1, 2, 3, 4}); };
  auto error = [&] {
    std::string message = error_of([&] { data::read_shard(path); });
    CHECK(message.find('\n') == std::string::npos);
    return message;
  };
  fresh();
  fs::resize_file(path, 40 + 7);
  CHECK(error() == path + ": truncated shard (header says 4 ids of 2 bytes; the file has 7 bytes after the header)");
  fs::resize_file(path, 20);
  CHECK(error() == path + ": truncated shard (20 bytes, shorter than the 40-byte header)");
  fresh();
  fs::resize_file(path, 40 + 9);
  CHECK(error() == path + ": oversized shard (header says 4 ids of 2 bytes; the file has 9 bytes after the header)");
  fresh();
  poke(path, 0, "GPT2");
  CHECK(error() == path + ": wrong magic number (neither an avey token shard nor an llm.c GPT-2 shard)");
  fresh();
  poke(path, 8, std::string("\x07\0\0\0", 4));
  CHECK(error() == path + ": shard version 7 is not supported (expected 1)");
  fresh();
  poke(path, 12, std::string("\x03\0\0\0", 4));
  CHECK(error() == path + ": corrupt shard header");
  fresh();
  poke(path, 32, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));  // a count whose size overflows
  CHECK(error().find(": truncated shard (header says 9223372036854775807 ids") != std::string::npos);
  CHECK(error_of([&] { data::read_shard(dir.file("missing.bin")); }) == "cannot open shard file " + dir.file("missing.bin"));
  CHECK(error_of([&] { data::write_shard(path, "a-name-far-too-long", {}); }) ==
        path + ": tokenizer name 'a-name-far-too-long' must have 1 to 15 characters");
}

TEST_CASE("shards: llm.c GPT-2 shards read as r50k ids, llm.c's other files refused with what they are") {
  TempDir dir("llmc");
  auto r50k = data::load_tokenizer("r50k");
  const std::string text = "Call me Ishmael. Some years ago, never mind how long precisely.";
  std::vector<uint16_t> ids = {50256};
  for (int32_t id : r50k->encode_ordinary(text)) ids.push_back(uint16_t(id));
  const std::string path = dir.file("tiny_val_000000.bin");
  write_llmc(path, ids);
  CHECK(fs::file_size(path) == 1024 + 2 * ids.size());
  data::Shard shard = data::read_shard(path);
  CHECK(shard.tokenizer == "r50k");
  CHECK(shard.tokens == std::vector<uint32_t>(ids.begin(), ids.end()));
  CHECK(r50k->decode({shard.tokens.begin() + 1, shard.tokens.end()}) == text);

  auto error = [&](const std::string& p) { return error_of([&] { data::read_shard(p); }); };
  const std::string bad = dir.file("bad.bin");
  write_llmc(bad, ids, 20240520, 2);
  CHECK(error(bad) == bad + ": llm.c shard version 2 is not supported (expected 1: GPT-2 uint16 ids)");
  write_llmc(bad, ids, 20240801, 7);
  CHECK(error(bad) == bad + ": an llm.c LLaMA-3 shard (uint32 ids of a tokenizer this engine does not have; "
                            "llm.c's GPT-2 shards, magic 20240520, are read)");
  write_llmc(bad, ids, 20240522, 1);
  CHECK(error(bad) == bad + ": an llm.c evaluation file (HellaSwag/MMLU examples), not a token shard");
  write_llmc(bad, ids);
  fs::resize_file(bad, 1024 + 3);
  CHECK(error(bad) == bad + ": truncated shard (header says " + std::to_string(ids.size()) +
                          " ids of 2 bytes; the file has 3 bytes after the header)");
  fs::resize_file(bad, 100);
  CHECK(error(bad) == bad + ": truncated llm.c shard (100 bytes, shorter than the 1024-byte header)");
}

TEST_CASE("token streams: shards mapped one after another read like their ids joined, across boundaries") {
  TempDir dir("stream");
  std::vector<uint32_t> all;
  std::vector<std::string> paths;
  for (int k = 0; k < 4; ++k) {  // 0, 37, 74 and 111 ids: the first shard is empty
    std::vector<uint32_t> ids;
    for (int i = 0; i < 37 * k; ++i) ids.push_back(uint32_t(k == 3 ? 70000 + i : 1000 * k + i));  // shard 3: 4-byte ids
    all.insert(all.end(), ids.begin(), ids.end());
    paths.push_back(dir.file("part-" + std::to_string(k) + ".bin"));
    data::write_shard(paths.back(), "test", ids);
  }
  data::TokenStream s = data::TokenStream::open(paths);
  CHECK(s.tokenizer() == "test");
  REQUIRE(s.size() == all.size());
  for (uint64_t at : {0, 5, 36, 37, 100, 200})
    for (uint64_t n : {0, 1, 2, 40, 80})
      if (at + n <= all.size()) CHECK(s.read(at, n) == std::vector<uint32_t>(all.begin() + long(at), all.begin() + long(at + n)));
  data::TokenStream mid = s.slice(30, 150);
  CHECK(mid.size() == 120);
  CHECK(mid.read(0, 120) == std::vector<uint32_t>(all.begin() + 30, all.begin() + 150));
  CHECK(mid.slice(10, 20).read(0, 10) == std::vector<uint32_t>(all.begin() + 40, all.begin() + 50));
  CHECK(error_of([&] { mid.read(100, 21); }) == "token stream: ids [100, 121) are past its end (120 ids)");
  CHECK(data::TokenStream(all).read(0, all.size()) == all);

  data::write_shard(dir.file("other.bin"), "p50k", {1, 2, 3});
  CHECK(error_of([&] { data::TokenStream::open({paths[1], dir.file("other.bin")}); }) ==
        dir.file("other.bin") + " holds p50k ids but " + paths[1] + " holds test ids (one stream, one tokenizer)");
}

TEST_CASE("shards: written as a stream, stopping at max_ids or when the source runs dry") {
  TempDir dir("stream-write");
  uint32_t next = 0;
  auto source = [&](uint32_t* out, size_t n) {
    n = std::min<size_t>(n, 2500000 - next);  // more than one internal chunk of 2^20 ids
    for (size_t i = 0; i < n; ++i) out[i] = next++ % 50000;
    return n;
  };
  CHECK(data::write_shard(dir.file("a.bin"), "p50k", 2, source, 1500000) == 1500000);
  CHECK(data::write_shard(dir.file("b.bin"), "p50k", 2, source) == 1000000);
  CHECK(data::write_shard(dir.file("c.bin"), "p50k", 2, source) == 0);
  data::TokenStream s = data::TokenStream::open({dir.file("a.bin"), dir.file("b.bin"), dir.file("c.bin")});
  REQUIRE(s.size() == 2500000);
  std::vector<uint32_t> ids = s.read(0, s.size());
  bool same = true;
  for (size_t i = 0; i < ids.size(); ++i) same = same && ids[i] == i % 50000;
  CHECK(same);
  CHECK(error_of([&] { data::write_shard(dir.file("d.bin"), "p50k", 2, [](uint32_t* out, size_t) { out[0] = 70000; return size_t(1); }); }) ==
        dir.file("d.bin") + ": id 70000 does not fit in 2 bytes");
  CHECK_FALSE(fs::exists(dir.file("d.bin")));
}

TEST_CASE("loader: contiguous windows, targets shifted by one, each window once per epoch") {
  const int64_t B = 4, T = 8;
  data::Loader loader(iota_tokens(1000), B, T, 1);
  CHECK(loader.batches_per_epoch() == (999 / T) / B);  // 124 windows -> 31 batches
  std::set<int32_t> starts;
  for (int64_t k = 0; k < loader.batches_per_epoch(); ++k) {
    data::Batch batch = loader.next();
    REQUIRE(batch.B == B);
    REQUIRE(batch.T == T);
    REQUIRE(batch.inputs.size() == size_t(B * T));
    for (int64_t b = 0; b < B; ++b) {
      int32_t start = batch.inputs[b * T];
      CHECK(start % T == 0);
      starts.insert(start);
      for (int64_t t = 0; t < T; ++t) {
        CHECK(batch.inputs[b * T + t] == start + t);
        CHECK(batch.targets[b * T + t] == start + t + 1);
      }
    }
  }
  CHECK(starts.size() == size_t(loader.batches_per_epoch() * B));  // no window twice in an epoch
  CHECK(loader.state().epoch == 0);
  loader.next();
  CHECK(loader.state().epoch == 1);
  CHECK(loader.state().cursor == 1);
}

TEST_CASE("loader: the order depends on the seed alone, changes each epoch, and resumes from state()") {
  auto run = [](data::Loader& loader, int n) {
    std::vector<int32_t> firsts;
    for (int i = 0; i < n; ++i) firsts.push_back(loader.next().inputs[0]);
    return firsts;
  };
  data::Loader a(iota_tokens(5000), 2, 16, 7), b(iota_tokens(5000), 2, 16, 7), c(iota_tokens(5000), 2, 16, 8);
  const int per_epoch = static_cast<int>(a.batches_per_epoch());
  std::vector<int32_t> seq = run(a, 3 * per_epoch);
  CHECK(run(b, 3 * per_epoch) == seq);
  CHECK(run(c, 3 * per_epoch) != seq);
  CHECK(std::vector<int32_t>(seq.begin(), seq.begin() + per_epoch) !=
        std::vector<int32_t>(seq.begin() + per_epoch, seq.begin() + 2 * per_epoch));

  for (int taken : {0, 5, per_epoch, per_epoch + 3, 2 * per_epoch}) {
    data::Loader first(iota_tokens(5000), 2, 16, 7);
    run(first, taken);
    data::Loader::State state = first.state();
    data::Loader resumed(iota_tokens(5000), 2, 16, 7);
    resumed.restore(state);
    CHECK(run(resumed, per_epoch) == std::vector<int32_t>(seq.begin() + taken, seq.begin() + taken + per_epoch));
  }
  CHECK(error_of([&] { a.restore({0, 1000}); }) == "loader: cannot restore cursor 1000 (an epoch has 156 batches)");
  CHECK(error_of([] { data::Loader(iota_tokens(64), 4, 16, 0); }) == "loader: 64 tokens cannot fill one 4 x 16 batch (needs 65)");
  CHECK(error_of([] { data::Loader(iota_tokens(64), 0, 16, 0); }) == "loader: batch size 0 x 16 must be positive");
}

TEST_CASE("loader: windows from many mapped shards are the batches of the joined ids, and resume the same") {
  TempDir dir("loader-shards");
  std::vector<std::string> paths;
  for (int k = 0; k < 5; ++k) {
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 997; ++i) ids.push_back(uint32_t(k * 997) + i);
    paths.push_back(dir.file(fmt::format("s{}.bin", k)));
    data::write_shard(paths.back(), "test", ids);
  }
  data::Loader mapped(data::TokenStream::open(paths), 3, 50, 5), memory(iota_tokens(5 * 997), 3, 50, 5);
  CHECK(mapped.batches_per_epoch() == memory.batches_per_epoch());
  for (int i = 0; i < 40; ++i) {  // more than an epoch (33 batches)
    data::Batch a = mapped.next(), b = memory.next();
    REQUIRE(a.inputs == b.inputs);
    REQUIRE(a.targets == b.targets);
  }
  data::Loader resumed(data::TokenStream::open(paths), 3, 50, 5);
  resumed.restore(mapped.state());
  CHECK(resumed.next().inputs == memory.next().inputs);
}

TEST_CASE("corpus: text files in natural order, documents each preceded by end-of-text") {
  TempDir dir("corpus");
  dir.file("chapter_10.txt", "ten");
  dir.file("chapter_2.txt", "two");
  dir.file("notes.md", "not text");
  fs::create_directories(dir.path / "sub");
  dir.file("sub/a.txt", "A");
  std::vector<std::string> files = data::expand_path(dir.path.string(), {".txt"});
  REQUIRE(files.size() == 3);
  CHECK(fs::path(files[0]).filename() == "chapter_2.txt");
  CHECK(fs::path(files[1]).filename() == "chapter_10.txt");
  CHECK(fs::path(files[2]).filename() == "a.txt");
  data::ByteTokenizer bytes;
  CHECK(data::tokenize_files(bytes, {files[0], files[1]}) == std::vector<uint32_t>{256, 't', 'w', 'o', 256, 't', 'e', 'n'});
  CHECK(data::expand_path(files[0], {".txt"}) == std::vector<std::string>{files[0]});
  CHECK(data::expand_path(dir.file("notes.md"), {".txt"}) == std::vector<std::string>{dir.file("notes.md")});
  CHECK(data::expand_path((dir.path / "*" / "*.txt").string(), {}) == std::vector<std::string>{files[2]});
  CHECK(data::expand_path((dir.path / "chapter_*.txt").string(), {}) == std::vector<std::string>{files[0], files[1]});
  CHECK(error_of([&] { data::expand_path((dir.path / "sub" / "none").string(), {".txt"}); }) ==
        "no such file or folder: " + (dir.path / "sub" / "none").string());
  CHECK(error_of([&] { data::expand_path((dir.path / "*.bin").string(), {}); }) == "no file matches " + (dir.path / "*.bin").string());
  CHECK(error_of([&] { data::expand_path((dir.path / "sub").string(), {".bin", ".jsonl"}); }) ==
        "folder " + (dir.path / "sub").string() + " holds no *.bin or *.jsonl files");
}

TEST_CASE("corpus: Moby Dick goes through shards and the loader unchanged (p50k and bytes)") {
  for (std::string name : {"p50k", "bytes"}) {
    auto tok = data::load_tokenizer(name);
    data::CorpusShards shards = data::prepare_corpus("moby-dick", *tok, false);
    data::CorpusSplit split = data::corpus_files("moby-dick");
    CHECK(split.train.size() == 127);  // etymology, extracts, chapters 1-125
    CHECK(split.val.size() == 11);     // chapters 126-135, epilogue
    INFO(name << ": train " << shards.train_tokens << " tokens, val " << shards.val_tokens);
    auto expected_text = [&](const std::vector<std::string>& files) {
      std::string text;
      for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        text += std::string(data::kEndOfText) + s.str();
      }
      return text;
    };
    data::Shard train = data::read_shard(shards.train), val = data::read_shard(shards.val);
    CHECK(train.tokenizer == name);
    CHECK(int64_t(train.tokens.size()) == shards.train_tokens);
    CHECK(int64_t(val.tokens.size()) == shards.val_tokens);
    CHECK(tok->decode(std::vector<int32_t>(train.tokens.begin(), train.tokens.end())) == expected_text(split.train));
    CHECK(tok->decode(std::vector<int32_t>(val.tokens.begin(), val.tokens.end())) == expected_text(split.val));
    if (name == "p50k") {
      CHECK(shards.train_tokens == 265624);
      CHECK(shards.val_tokens == 27470);
    } else {
      CHECK(shards.train_tokens == 1106906);
      CHECK(shards.val_tokens == 109510);
    }

    // Every row of an epoch is the window of the stream it claims to be, and no window repeats.
    const int64_t B = 4, T = 256;
    data::Loader loader(train.tokens, B, T, 123);
    std::set<size_t> seen;
    for (int64_t k = 0; k < loader.batches_per_epoch(); ++k) {
      data::Batch batch = loader.next();
      for (int64_t b = 0; b < B; ++b) {
        const int32_t* row = batch.inputs.data() + b * T;
        size_t found = SIZE_MAX;
        for (size_t w = 0; w * T + T < train.tokens.size() && found == SIZE_MAX; ++w)
          if (!seen.count(w) && std::equal(row, row + T, train.tokens.begin() + w * T) &&
              static_cast<uint32_t>(batch.targets[b * T + T - 1]) == train.tokens[w * T + T])
            found = w;
        CHECK(found != SIZE_MAX);
        seen.insert(found);
      }
    }
    CHECK(seen.size() == size_t(loader.batches_per_epoch() * B));
  }
}
