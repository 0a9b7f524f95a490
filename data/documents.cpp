// DocumentReader: files opened one at a time, JSON lines parsed, long documents cut.
#include "data/documents.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/pretokenizer.h"

namespace data {

DocumentReader::DocumentReader(std::vector<std::string> files, size_t max_piece)
    : files_(std::move(files)), max_piece_(std::max<size_t>(max_piece, 2)) {
  for (const auto& f : files_) {
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(f, ec);
    if (ec) throw std::runtime_error("cannot read text file " + f);
    total_bytes_ += size;
  }
}

bool DocumentReader::next(TextPiece& piece) {
  if (!in_document_ && !open_document()) return false;
  for (;;) {
    if (pending_.size() >= max_piece_) {
      size_t cut = safe_cut(pending_, max_piece_ / 2);
      if (cut < pending_.size()) {
        emit(piece, cut);
        return true;
      }
    }
    if (!more_) {
      emit(piece, pending_.size());
      in_document_ = false;
      return true;
    }
    read_block();
  }
}

void DocumentReader::emit(TextPiece& piece, size_t n) {
  piece.text.assign(pending_, 0, n);
  pending_.erase(0, n);
  piece.starts_document = starts_;
  starts_ = false;
}

bool DocumentReader::open_document() {
  for (;;) {
    if (!in_.is_open()) {
      if (file_ == files_.size()) return false;
      const std::string& path = files_[file_];
      in_.open(path, std::ios::binary);
      if (!in_) throw std::runtime_error("cannot read text file " + path);
      jsonl_ = std::filesystem::path(path).extension() == ".jsonl";
      line_ = 0;
      if (!jsonl_) {
        pending_.clear();
        in_document_ = more_ = starts_ = true;
        return true;
      }
    }
    std::string line;
    while (std::getline(in_, line)) {
      ++line_;
      bytes_read_ += line.size() + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
        throw std::runtime_error(fmt::format("{}:{}: expected a JSON object with a \"text\" string", files_[file_], line_));
      pending_ = j["text"].get<std::string>();
      in_document_ = starts_ = true;
      more_ = false;
      return true;
    }
    close_file();
  }
}

void DocumentReader::read_block() {
  const size_t old = pending_.size();
  pending_.resize(old + max_piece_);
  in_.read(pending_.data() + old, std::streamsize(max_piece_));
  const size_t got = size_t(in_.gcount());
  pending_.resize(old + got);
  bytes_read_ += got;
  if (in_.bad()) throw std::runtime_error("cannot read text file " + files_[file_]);
  if (got < max_piece_) {
    more_ = false;
    close_file();
  }
}

void DocumentReader::close_file() {
  in_.close();
  in_.clear();
  ++file_;
}

std::string documents_text(const std::vector<std::string>& files) {
  DocumentReader reader(files);
  std::string text;
  text.reserve(reader.total_bytes() + files.size());
  bool any = false;
  for (TextPiece piece; reader.next(piece); any = true) {
    if (piece.starts_document && any) text += '\n';  // the end of the document before
    text += piece.text;
  }
  if (any) text += '\n';
  return text;
}

}  // namespace data
