// The training loader: cuts a token stream into B x T batches of next-token prediction.
//
// The stream (documents joined by end-of-text) is cut into W = (N - 1) / T contiguous windows of
// T + 1 tokens, window w starting at token w * T; a row's inputs are a window's first T tokens and
// its targets the last T (inputs shifted by one). Each epoch visits the windows in a fresh
// order, a permutation fixed by (seed, epoch) alone, B windows per batch; the W mod B windows
// left over differ from epoch to epoch. The position is (epoch, batches taken this epoch), so a
// run that saves state() and later calls restore() continues with exactly the same batches.
// The windows are read from a TokenStream (token_stream.h): shards stay on disk, memory-mapped.
#pragma once
#include <cstdint>
#include <vector>

#include "data/token_stream.h"

namespace data {

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // row-major B x T; targets = inputs shifted by one
};

class Loader {
 public:
  // Throws when the tokens cannot fill one batch.
  Loader(TokenStream tokens, int64_t B, int64_t T, uint64_t seed);

  Batch next();  // deterministic order from the seed; reshuffles each epoch
  void skip();   // moves past the next batch without reading it (another rank's: cli/data_parallel.h)

  struct State {
    uint64_t epoch = 0, cursor = 0;  // cursor: batches already taken in this epoch
  };
  State state() const { return state_; }
  void restore(const State& state);  // throws for a cursor past the end of an epoch

  int64_t batches_per_epoch() const { return batches_per_epoch_; }

 private:
  void shuffle();    // order_ for state_.epoch
  uint64_t take();   // the position in order_ of the next batch's first window; moves past it

  TokenStream tokens_;
  int64_t B_, T_, batches_per_epoch_;
  uint64_t seed_;
  State state_;
  std::vector<uint64_t> order_;  // window indices of the current epoch
  std::vector<uint32_t> window_;  // T + 1 ids read from the stream
};

}  // namespace data
