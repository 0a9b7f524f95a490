// Loader: windows, a seeded Fisher-Yates shuffle per epoch (splitmix64, the same on every
// platform, unlike std::uniform_int_distribution), and batches read from the token stream.
#include "data/loader.h"

#include <fmt/format.h>

#include <numeric>
#include <stdexcept>

namespace data {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Loader::Loader(TokenStream tokens, int64_t B, int64_t T, uint64_t seed)
    : tokens_(std::move(tokens)), B_(B), T_(T), seed_(seed) {
  if (B < 1 || T < 1) throw std::runtime_error(fmt::format("loader: batch size {} x {} must be positive", B, T));
  int64_t windows = tokens_.size() > 1 ? static_cast<int64_t>(tokens_.size() - 1) / T : 0;
  batches_per_epoch_ = windows / B;
  if (batches_per_epoch_ < 1)
    throw std::runtime_error(fmt::format("loader: {} tokens cannot fill one {} x {} batch (needs {})", tokens_.size(), B, T, B * T + 1));
  order_.resize(windows);
  window_.resize(T + 1);
  shuffle();
}

void Loader::shuffle() {
  std::iota(order_.begin(), order_.end(), 0);
  uint64_t x = seed_ ^ (state_.epoch * 0xd1b54a32d192ed03ull);
  for (size_t i = order_.size() - 1; i > 0; --i) {
    size_t j = static_cast<size_t>((static_cast<unsigned __int128>(splitmix64(x)) * (i + 1)) >> 64);
    std::swap(order_[i], order_[j]);
  }
}

uint64_t Loader::take() {
  if (state_.cursor == static_cast<uint64_t>(batches_per_epoch_)) {
    ++state_.epoch;
    state_.cursor = 0;
    shuffle();
  }
  return state_.cursor++ * static_cast<uint64_t>(B_);
}

void Loader::skip() { take(); }

Batch Loader::next() {
  const uint64_t first = take();
  Batch batch{B_, T_, std::vector<int32_t>(B_ * T_), std::vector<int32_t>(B_ * T_)};
  for (int64_t b = 0; b < B_; ++b) {
    tokens_.read(order_[first + b] * T_, T_ + 1, window_.data());
    for (int64_t t = 0; t < T_; ++t) {
      batch.inputs[b * T_ + t] = static_cast<int32_t>(window_[t]);
      batch.targets[b * T_ + t] = static_cast<int32_t>(window_[t + 1]);
    }
  }
  return batch;
}

void Loader::restore(const State& state) {
  if (state.cursor > static_cast<uint64_t>(batches_per_epoch_))
    throw std::runtime_error(fmt::format("loader: cannot restore cursor {} (an epoch has {} batches)", state.cursor, batches_per_epoch_));
  bool reshuffle = state.epoch != state_.epoch;
  state_ = state;
  if (reshuffle) shuffle();
}

}  // namespace data
