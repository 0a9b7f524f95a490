// The keys and values of RULER-style needles: "One of the special magic numbers for {key} is: {value}."
// RULER draws the key as an adjective and a noun joined by a hyphen (from the wonderwords lists)
// and the value as a random 7-digit number; here the words come from two short lists of common
// English words written for this engine (niah_words.cpp), and the draws from engine::Rng, so a
// seed gives the same needles on every machine.
#pragma once
#include <string>
#include <vector>

#include "engine/random.h"

namespace data::niah {

struct Needle {
  std::string key;    // "adjective-noun", e.g. "quiet-harbor"
  std::string value;  // 7 digits, 1000000..9999999
};

Needle draw_needle(engine::Rng& rng);
// The encoder needle test's haystack vocabulary (data/finetune_tasks.h): the adjectives and nouns
// above and a few function words, verbs and adverbs, as the reference's word haystack mixes them.
const std::vector<std::string>& haystack_words();
// n needles drawn in turn from engine::Rng(seed): the same list for a seed, whatever n (a prefix).
std::vector<Needle> needles(size_t n, uint64_t seed);

}  // namespace data::niah
