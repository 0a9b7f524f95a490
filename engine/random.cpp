#include "engine/random.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace engine {

double Rng::uniform() { return double(gen_() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling keeps the result exactly uniform.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = gen_();
  while (x >= limit);
  return x % n;
}

std::string Rng::state() const {
  std::ostringstream out;
  out << gen_;
  return out.str();
}

void Rng::set_state(const std::string& s) {
  std::istringstream in(s);
  in >> gen_;
  if (in.fail()) throw std::runtime_error("rng: corrupt generator state");
}

}  // namespace engine
