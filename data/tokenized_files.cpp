// TokenizedFiles: read a batch of pieces, encode them in parallel, hand the ids out in order.
#include "data/tokenized_files.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <exception>

namespace data {

TokenizedFiles::TokenizedFiles(const Tokenizer& tok, std::vector<std::string> files, TokenizeOptions options)
    : tok_(tok), reader_(std::move(files), options.max_piece), options_(std::move(options)), progress_(options_.progress) {}

void TokenizedFiles::next_batch() {
  std::vector<TextPiece> pieces;
  size_t bytes = 0;
  for (TextPiece piece; bytes < options_.batch_bytes && reader_.next(piece);) {
    bytes += piece.text.size();
    pieces.push_back(std::move(piece));
  }
  parts_.assign(pieces.size(), {});
  part_ = pos_ = 0;
  std::exception_ptr failure;
  const int threads = options_.threads > 0 ? options_.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (size_t i = 0; i < pieces.size(); ++i) {
    try {
      const std::vector<int32_t> ids = tok_.encode_ordinary(pieces[i].text);
      std::string().swap(pieces[i].text);  // the text is not needed any more
      std::vector<uint32_t>& part = parts_[i];
      part.reserve(ids.size() + 1);
      if (pieces[i].starts_document) part.push_back(static_cast<uint32_t>(tok_.eot()));
      part.insert(part.end(), ids.begin(), ids.end());
    } catch (...) {
#pragma omp critical
      failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  for (const auto& part : parts_) produced_ += part.size();
  const std::string status = fmt::format("{}/{} files | {:.1f} MB | {} tokens", reader_.files_done(), reader_.files(),
                                         reader_.bytes_read() / 1e6, produced_);
  if (pieces.empty()) {
    finished_ = true;
    progress_.finish(fmt::format("{} | {:.1f} MB/s", status, reader_.bytes_read() / 1e6 / std::max(progress_.elapsed(), 1e-9)));
  } else {
    progress_.update(std::min(1.0, double(reader_.bytes_read()) / double(std::max<uint64_t>(reader_.total_bytes(), 1))), status);
  }
}

bool TokenizedFiles::at_end() {
  for (;;) {
    while (part_ < parts_.size() && pos_ == parts_[part_].size()) {
      std::vector<uint32_t>().swap(parts_[part_++]);  // handed out: free it
      pos_ = 0;
    }
    if (part_ < parts_.size() || finished_) return part_ == parts_.size();
    next_batch();
  }
}

size_t TokenizedFiles::read(uint32_t* out, size_t max) {
  if (at_end()) return 0;
  const std::vector<uint32_t>& part = parts_[part_];
  const size_t n = std::min(max, part.size() - pos_);
  std::copy_n(part.begin() + long(pos_), n, out);
  pos_ += n;
  tokens_ += n;
  return n;
}

std::vector<uint32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& files,
                                     const std::string& progress_label) {
  TokenizeOptions options;
  options.progress = progress_label;
  TokenizedFiles stream(tok, files, options);
  std::vector<uint32_t> ids;
  std::vector<uint32_t> chunk(size_t(1) << 20);
  while (size_t n = stream.read(chunk.data(), chunk.size())) ids.insert(ids.end(), chunk.begin(), chunk.begin() + long(n));
  return ids;
}

}  // namespace data
