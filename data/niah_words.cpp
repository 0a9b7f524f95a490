#include "data/niah_words.h"

#include <array>

namespace data::niah {

namespace {

// 100 adjectives and 100 nouns: 10,000 keys.
constexpr std::array<const char*, 100> kAdjectives = {
    "able",    "ancient", "angry",   "bitter",  "black",   "blue",    "bold",    "brave",   "bright",  "broad",
    "broken",  "brown",   "busy",    "calm",    "careful", "cheap",   "clean",   "clear",   "clever",  "cold",
    "cool",    "crisp",   "curious", "damp",    "dark",    "deep",    "dense",   "dry",     "dusty",   "eager",
    "early",   "empty",   "fair",    "fancy",   "fast",    "fierce",  "flat",    "fond",    "fragile", "free",
    "fresh",   "gentle",  "giant",   "glad",    "golden",  "grand",   "gray",    "green",   "happy",   "hard",
    "heavy",   "hidden",  "hollow",  "honest",  "hot",     "huge",    "humble",  "icy",     "idle",    "kind",
    "large",   "late",    "lazy",    "light",   "little",  "lively",  "long",    "loud",    "lucky",   "mild",
    "modern",  "narrow",  "neat",    "noble",   "odd",     "old",     "pale",    "plain",   "polite",  "proud",
    "purple",  "quick",   "quiet",   "rapid",   "rare",    "red",     "rich",    "rough",   "round",   "royal",
    "rusty",   "sharp",   "shy",     "silent",  "silver",  "simple",  "slow",    "small",   "smooth",  "soft",
};
constexpr std::array<const char*, 100> kNouns = {
    "anchor",  "apple",   "arrow",   "badge",   "basket",  "beach",   "bell",    "bird",    "blanket", "boat",
    "bottle",  "bridge",  "brush",   "button",  "cabin",   "camera",  "candle",  "canyon",  "castle",  "cave",
    "chair",   "cloud",   "coat",    "comet",   "copper",  "cottage", "crown",   "desert",  "diamond", "dolphin",
    "dragon",  "drum",    "eagle",   "engine",  "falcon",  "feather", "fence",   "field",   "flag",    "flute",
    "forest",  "fountain", "garden", "glacier", "glove",   "hammer",  "harbor",  "helmet",  "island",  "jacket",
    "kettle",  "ladder",  "lantern", "lemon",   "library", "lizard",  "meadow",  "mirror",  "monkey",  "needle",
    "ocean",   "orchard", "otter",   "palace",  "panther", "pencil",  "pepper",  "piano",   "pillow",  "planet",
    "pocket",  "pond",    "rabbit",  "railway", "river",   "rocket",  "saddle",  "sandal",  "shadow",  "shell",
    "spider",  "spoon",   "statue",  "storm",   "sunset",  "swan",    "table",   "temple",  "thunder", "tiger",
    "tower",   "trumpet", "tunnel",  "valley",  "violin",  "wagon",   "wallet",  "window",  "wizard",  "zebra",
};

// Function words, verbs and adverbs that make the word soup read like prose.
constexpr std::array<const char*, 40> kGlue = {
    "the",  "and",   "or",     "but",   "because", "however", "then",    "while",  "after", "before",
    "under", "over", "between", "across", "toward", "beyond",  "within",  "along",  "run",   "walk",
    "read", "write", "build",  "carry", "find",    "keep",    "hold",    "follow", "open",  "close",
    "often", "never", "always", "rarely", "slowly", "quickly", "quietly", "gladly", "soon",  "still",
};

}  // namespace

const std::vector<std::string>& haystack_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w(kAdjectives.begin(), kAdjectives.end());
    w.insert(w.end(), kNouns.begin(), kNouns.end());
    w.insert(w.end(), kGlue.begin(), kGlue.end());
    return w;
  }();
  return words;
}

Needle draw_needle(engine::Rng& rng) {
  Needle n;
  n.key = std::string(kAdjectives[rng.below(kAdjectives.size())]) + "-" + kNouns[rng.below(kNouns.size())];
  n.value = std::to_string(1000000 + rng.below(9000000));
  return n;
}

std::vector<Needle> needles(size_t n, uint64_t seed) {
  engine::Rng rng(seed);
  std::vector<Needle> out;
  for (size_t i = 0; i < n; ++i) out.push_back(draw_needle(rng));
  return out;
}

}  // namespace data::niah
