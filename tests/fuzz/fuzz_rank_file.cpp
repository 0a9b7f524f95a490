// BPE rank files (data/bpe_tokenizer.h: "base64-bytes rank" lines); a file that reads also
// encodes and decodes a text.
#include "data/bpe_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] {
    const data::BpeTokenizer tok(fuzz::file(data, size, ".tiktoken"), "fuzz", 1 << 24);
    tok.decode(tok.encode_ordinary("hello world, hello <|endoftext|> 12345"));
  });
}
