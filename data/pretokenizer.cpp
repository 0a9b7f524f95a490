// PCRE2 wrapper behind Pretokenizer: compile the GPT-2 pattern once (with JIT), then walk the
// matches of a text, handing out the unmatched gaps (invalid UTF-8) as pieces too.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/pretokenizer.h"

#include <pcre2.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

namespace data {

namespace {

constexpr const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

pcre2_code* code(void* p) { return static_cast<pcre2_code*>(p); }

std::string pcre2_message(int error) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(error, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Pretokenizer::Pretokenizer() {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (!c) throw std::runtime_error("pre-tokeniser pattern does not compile: " + pcre2_message(error));
  pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  // when JIT is unavailable pcre2_match interprets
  code_ = c;
}

Pretokenizer::~Pretokenizer() { pcre2_code_free(code(code_)); }

void Pretokenizer::split(std::string_view text, const std::function<void(std::string_view)>& piece) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(code(code_), nullptr), pcre2_match_data_free);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int rc = pcre2_match(code(code_), subject, text.size(), pos, 0, match.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {  // only invalid UTF-8 is left
      piece(text.substr(pos));
      return;
    }
    if (rc < 0) throw std::runtime_error("pre-tokeniser: PCRE2 match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    if (ovector[0] > pos) piece(text.substr(pos, ovector[0] - pos));  // invalid UTF-8 before it
    piece(text.substr(ovector[0], ovector[1] - ovector[0]));
    pos = ovector[1];
  }
}

size_t safe_cut(std::string_view text, size_t from) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  for (size_t p = std::max<size_t>(from, 1); p + 1 < text.size(); ++p)
    if (text[p] == ' ' && letter(text[p - 1]) && letter(text[p + 1])) return p;
  return text.size();
}

}  // namespace data
