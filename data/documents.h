// The documents of text files, handed out in pieces small enough to tokenise one per task.
//
//   *.jsonl     JSON lines: every line that is not blank is an object whose "text" string is one
//               document ({"text": "Call me Ishmael. ..."}; other fields are ignored)
//   any other   the whole file is one document, read in blocks (never whole)
//
// A document longer than max_piece bytes is cut where safe_cut() allows (pretokenizer.h), so
// encoding the pieces one after another gives exactly the ids of the whole document.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace data {

struct TextPiece {
  std::string text;
  bool starts_document = false;  // the first piece of a document (end-of-text goes before it)
};

class DocumentReader {
 public:
  explicit DocumentReader(std::vector<std::string> files, size_t max_piece = size_t(1) << 20);

  // The next piece; false after the last. Throws one line naming the file (and line) it cannot read.
  bool next(TextPiece& piece);

  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t total_bytes() const { return total_bytes_; }
  size_t files_done() const { return file_; }
  size_t files() const { return files_.size(); }

 private:
  bool open_document();  // the next document (line or file) into pending_; false at the end
  void read_block();     // appends the next block of a text file to pending_
  void close_file();
  void emit(TextPiece& piece, size_t n);

  std::vector<std::string> files_;
  size_t max_piece_;
  size_t file_ = 0;  // index of the file being read
  std::ifstream in_;
  bool jsonl_ = false;
  int64_t line_ = 0;
  std::string pending_;  // the current document's text not handed out yet
  bool in_document_ = false, more_ = false, starts_ = false;  // more_: the file holds more of it
  uint64_t bytes_read_ = 0, total_bytes_ = 0;
};

// The documents of files as one text in memory, each followed by a newline (small corpora: the
// haystack the needle-in-a-haystack tasks hide their needle in). Throws as DocumentReader does.
std::string documents_text(const std::vector<std::string>& files);

}  // namespace data
