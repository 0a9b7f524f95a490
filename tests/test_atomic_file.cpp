// Atomic files (engine/atomic_file.h): the digest returned is the file's, however it was written
// (pieces larger than the buffer, a seek back to fill in a header); a writer that fails leaves
// the old file whole and no temporary file behind.
#include "engine/atomic_file.h"

#include <filesystem>

#include "tests/testing.h"

using testing::TempDir;

TEST_CASE("atomic files: the digest is the written file's, a failed write changes nothing") {
  TempDir dir("atomic");
  const std::string path = dir.file("f.bin");
  std::string big(3 * engine::kDigestPiece + 5, 'x');  // three whole pieces and a tail
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7919 % 251);
  engine::FileDigest d = engine::write_file_atomic(path, [&](std::ostream& out) {
    out.write(big.data(), 100);
    out << std::flush;  // a flush in the middle writes no short piece
    out.write(big.data() + 100, std::streamsize(big.size() - 100));
  });
  CHECK(d == engine::digest_file(path));
  CHECK(d.bytes == big.size());

  // A header filled in after the body (as token shards are written).
  d = engine::write_file_atomic(path, [&](std::ostream& out) {
    out << "count=?\n" << big;
    CHECK(out.tellp() == std::streampos(8 + big.size()));
    out.seekp(6);
    out << "3";
  });
  CHECK(d == engine::digest_file(path));
  std::ifstream in(path, std::ios::binary);
  std::string head(8, '\0');
  in.read(head.data(), 8);
  CHECK(head == "count=3\n");

  const engine::FileDigest before = engine::digest_file(path);
  CHECK_THROWS_WITH(engine::write_file_atomic(path, [&](std::ostream& out) {
                      out << "half of it";
                      throw std::runtime_error("the writer failed");
                    }),
                    "the writer failed");
  CHECK(engine::digest_file(path) == before);
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) CHECK(e.path().filename() == "f.bin");
}
