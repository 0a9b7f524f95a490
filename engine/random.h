// A seeded random number generator whose sequence is the same on every machine (mt19937_64
// with our own uniform and normal transforms; std:: distributions differ between libraries).
// Its whole state serialises to a string so that a resumed run continues the same stream.
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace engine {

class Rng {
 public:
  explicit Rng(uint64_t seed = 11) : gen_(seed) {}
  uint64_t next_u64() { return gen_(); }
  double uniform();               // [0, 1)
  double normal();                // standard normal (Box-Muller, no cached spare)
  uint64_t below(uint64_t n);     // uniform integer in [0, n)
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 gen_;
};

}  // namespace engine
