#include "data/finetune_tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <strings.h>
#include <stdexcept>

#include "data/niah_words.h"
#include "engine/atomic_file.h"
#include "engine/random.h"

namespace fs = std::filesystem;

namespace data {

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The files of a folder with a given extension ("" for any), sorted by name.
std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext, const std::string& fetch_flag) {
  if (!fs::is_directory(dir))
    throw std::runtime_error(fmt::format("no folder {} (scripts/fetch-data {} fetches it)", dir.string(), fetch_flag));
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && (ext.empty() || e.path().extension() == ext)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void shuffle(std::vector<size_t>& v, engine::Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// items split 80/10/10 after a seeded shuffle
TaskSplits split_80_10_10(const std::vector<nlohmann::json>& items, uint64_t seed) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  engine::Rng rng(seed);
  shuffle(order, rng);
  TaskSplits s;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t r = k % 10;
    (r < 8 ? s.train : r == 8 ? s.val : s.test).push_back(items[order[k]]);
  }
  return s;
}

// Keep at most max_train / max_eval examples (the first of a seeded shuffle), order kept shuffled.
void limit(TaskSplits& s, const TaskOptions& o) {
  engine::Rng rng(o.seed + 1);
  auto cut = [&](std::vector<nlohmann::json>& v, int64_t n) {
    std::vector<size_t> order(v.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    shuffle(order, rng);
    if (n > 0 && int64_t(order.size()) > n) order.resize(size_t(n));
    std::vector<nlohmann::json> out;
    for (size_t i : order) out.push_back(v[i]);
    v = std::move(out);
  };
  cut(s.train, o.max_train), cut(s.val, o.max_eval), cut(s.test, o.max_eval);
}

// The e-mail's Subject (continuation lines joined) and body; the other headers are dropped.
std::string mail_text(const std::string& raw) {
  size_t split = raw.find("\n\n");
  const std::string head = raw.substr(0, split), body = split == std::string::npos ? "" : raw.substr(split + 2);
  std::string subject;
  std::istringstream in(head);
  bool in_subject = false;
  for (std::string line; std::getline(in, line);) {
    if (in_subject && !line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      const size_t text = line.find_first_not_of(" \t");
      if (text != std::string::npos) subject.append(" ").append(line, text);
      continue;
    }
    in_subject = line.size() >= 8 && strncasecmp(line.c_str(), "subject:", 8) == 0;
    if (in_subject) subject = line.substr(std::min(line.size(), line.find_first_not_of(" \t", 8)));
  }
  constexpr size_t kBodyBytes = 4000;  // far more than a fine-tuning window reads
  return "Subject: " + subject + "\n\n" + body.substr(0, kBodyBytes);
}

// "State of the Union" file names: YEAR_first_last_PARTY.txt
struct Address {
  fs::path path;
  std::string party;
};
std::vector<Address> addresses(const std::string& sotu_dir) {
  std::vector<Address> out;
  for (const fs::path& p : files_in(sotu_dir, ".txt", "--sotu")) {
    const std::string stem = p.stem().string();
    out.push_back({p, stem.substr(stem.rfind('_') + 1)});
  }
  return out;
}

// Which split an address's examples go to: every 10th address validation, the next one test.
std::vector<nlohmann::json>& split_of(TaskSplits& s, size_t address) {
  return address % 10 == 8 ? s.val : address % 10 == 9 ? s.test : s.train;
}

// Sentences: cut after . ! ? followed by a space and an upper-case letter or a quote.
std::vector<std::string> sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i + 2 < text.size(); ++i)
    if ((text[i] == '.' || text[i] == '!' || text[i] == '?') && text[i + 1] == ' ' &&
        (std::isupper(static_cast<unsigned char>(text[i + 2])) || text[i + 2] == '"')) {
      out.push_back(text.substr(start, i + 1 - start));
      start = i + 2;
    }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

int64_t word_count(const std::string& s) {
  std::istringstream in(s);
  int64_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(read_file(p));
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool is_capitalised(const std::string& w) { return !w.empty() && std::isupper(static_cast<unsigned char>(w[0])); }
bool is_digits(const std::string& w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
}

const std::vector<std::string> kMonths = {"January", "February", "March",     "April",   "May",      "June",
                                          "July",    "August",   "September", "October", "November", "December"};

}  // namespace

TaskSplits spam_task(const std::string& spam_dir, const TaskOptions& o) {
  std::vector<nlohmann::json> items;
  for (const std::string group : {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"})
    for (const fs::path& p : files_in(fs::path(spam_dir) / group, ".txt", "--spam"))
      items.push_back({{"text", mail_text(read_file(p))}, {"label", group.rfind("spam", 0) == 0 ? "spam" : "ham"}});
  TaskSplits s = split_80_10_10(items, o.seed);
  limit(s, o);
  return s;
}

TaskSplits sotu_party_task(const std::string& sotu_dir, const TaskOptions& o) {
  TaskSplits s;
  size_t index = 0;
  for (const Address& a : addresses(sotu_dir)) {
    if (a.party != "d" && a.party != "r") continue;
    std::vector<nlohmann::json>& out = split_of(s, index++);
    const std::string label = a.party == "d" ? "democratic" : "republican";
    std::string passage;
    for (const std::string& sentence : sentences(read_file(a.path))) {
      if (!passage.empty() && word_count(passage) + word_count(sentence) > 120)
        out.push_back({{"text", passage}, {"label", label}}), passage.clear();
      passage += (passage.empty() ? "" : " ") + sentence;
    }
    if (word_count(passage) >= 20) out.push_back({{"text", passage}, {"label", label}});
  }
  limit(s, o);
  return s;
}

TaskSplits fortunes_task(const std::string& fortunes_dir, const TaskOptions& o) {
  static const std::vector<std::string> kCategories = {"computers", "education", "food",    "law",      "love",
                                                       "politics",  "science",   "sports",  "startrek", "work"};
  TaskSplits s;
  for (size_t c = 0; c < kCategories.size(); ++c) {
    const fs::path p = fs::path(fortunes_dir) / kCategories[c];
    if (!fs::exists(p)) throw std::runtime_error("no file " + p.string() + " (scripts/fetch-data --fortunes fetches it)");
    std::vector<nlohmann::json> items;
    std::string entry;
    std::istringstream in(read_file(p));
    auto flush = [&] {
      const size_t a = entry.find_first_not_of(" \t\n"), b = entry.find_last_not_of(" \t\n");
      if (a != std::string::npos) items.push_back({{"text", entry.substr(a, b + 1 - a)}, {"label", kCategories[c]}});
      entry.clear();
    };
    for (std::string line; std::getline(in, line);) {
      if (line == "%") flush();
      else entry += line + "\n";
    }
    flush();
    TaskSplits part = split_80_10_10(items, o.seed + c);
    s.train.insert(s.train.end(), part.train.begin(), part.train.end());
    s.val.insert(s.val.end(), part.val.begin(), part.val.end());
    s.test.insert(s.test.end(), part.test.begin(), part.test.end());
  }
  limit(s, o);
  return s;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t j = i + 1;
    if (std::isalpha(c)) {
      while (j < text.size() && (std::isalpha(static_cast<unsigned char>(text[j])) ||
                                 (text[j] == '\'' && j + 1 < text.size() && std::isalpha(static_cast<unsigned char>(text[j + 1])))))
        ++j;
    } else if (std::isdigit(c)) {
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    } else if (std::isspace(c)) {
      i = j;
      continue;
    } else {
      while (j < text.size() && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) ++j;  // a whole UTF-8 character
    }
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

void EntityLists::add_place(const std::string& place) {
  std::vector<std::string> words = split_words(place);
  if (!words.empty()) places[words[0]].push_back(std::move(words));
}

EntityLists load_entity_lists(const std::string& lists_dir) {
  const fs::path dir(lists_dir);
  if (!fs::is_directory(dir)) throw std::runtime_error("no folder " + lists_dir + " (scripts/fetch-data --names fetches it)");
  EntityLists l;
  for (const char* f : {"female-first-names.txt", "male-first-names.txt"})
    for (const std::string& n : read_lines(dir / f))
      if (n.size() >= 3) l.first_names.push_back(n);  // "Al", "Ed": too often not a name
  for (const std::string& p : read_lines(dir / "us-states.txt")) l.add_place(p);
  // country-list's names, their qualifiers dropped: "Bolivia, Plurinational State of" -> "Bolivia",
  // "Netherlands (the)" -> "Netherlands"
  const nlohmann::json countries = nlohmann::json::parse(read_file(dir / "countries.json"));
  for (const auto& c : countries) {
    std::string n = c.at("name").get<std::string>();
    l.add_place(n.substr(0, std::min(n.find(','), n.find(" ("))));
  }
  std::sort(l.first_names.begin(), l.first_names.end());
  l.first_names.erase(std::unique(l.first_names.begin(), l.first_names.end()), l.first_names.end());
  return l;
}

// BIO tags by the lists, scanning left to right, the longest match first at each word:
//   DATE  a month name, then maybe a day (1-31), then maybe a year (after a comma or not); a month alone (not "May",
//         a verb as often as a month); a year 1600-2099 alone
//   LOC   a place of the lists, word for word (case-sensitive; the longest one)
//   PER   a first name of the lists, not the sentence's first word, followed by 1-2 capitalised
//         words that are neither places nor months ("Abraham Lincoln", "John Quincy Adams")
std::vector<std::string> tag_entities(const std::vector<std::string>& w, const EntityLists& lists) {
  auto is_month = [](const std::string& s) { return std::find(kMonths.begin(), kMonths.end(), s) != kMonths.end(); };
  auto is_year = [](const std::string& s) { return s.size() == 4 && is_digits(s) && s >= "1600" && s <= "2099"; };
  auto place_at = [&](size_t i) {  // words of the longest place starting at i (0: none)
    size_t best = 0;
    const auto it = lists.places.find(w[i]);
    if (it == lists.places.end()) return best;
    for (const auto& p : it->second)
      if (p.size() > best && i + p.size() <= w.size() && std::equal(p.begin(), p.end(), w.begin() + long(i))) best = p.size();
    return best;
  };
  std::vector<std::string> tags(w.size(), "O");
  auto mark = [&](size_t i, size_t n, const std::string& type) {
    for (size_t k = 0; k < n; ++k) tags[i + k] = (k ? "I-" : "B-") + type;
  };
  for (size_t i = 0; i < w.size();) {
    if (is_month(w[i])) {
      size_t n = 1;
      if (n + i < w.size() && is_digits(w[i + n]) && w[i + n].size() <= 2 && std::stoi(w[i + n]) >= 1 && std::stoi(w[i + n]) <= 31) ++n;
      if (i + n + 1 < w.size() && w[i + n] == "," && is_year(w[i + n + 1])) n += 2;
      else if (i + n < w.size() && is_year(w[i + n])) ++n;
      if (n > 1 || w[i] != "May") {
        mark(i, n, "DATE");
        i += n;
        continue;
      }
    }
    if (is_year(w[i])) {
      mark(i, 1, "DATE");
      ++i;
      continue;
    }
    if (const size_t n = place_at(i)) {
      mark(i, n, "LOC");
      i += n;
      continue;
    }
    if (i > 0 && std::binary_search(lists.first_names.begin(), lists.first_names.end(), w[i])) {
      size_t n = 1;
      while (n < 3 && i + n < w.size() && is_capitalised(w[i + n]) && !is_month(w[i + n]) && !place_at(i + n)) ++n;
      if (n > 1) {
        mark(i, n, "PER");
        i += n;
        continue;
      }
    }
    ++i;
  }
  return tags;
}

TaskSplits entities_task(const std::string& sotu_dir, const std::string& lists_dir, const TaskOptions& o) {
  EntityLists lists = load_entity_lists(lists_dir);
  const std::vector<Address> all = addresses(sotu_dir);
  std::vector<std::string> texts;
  std::set<std::string> lower;  // every word the addresses write in lower case
  for (const Address& a : all) {
    texts.push_back(read_file(a.path));
    for (const std::string& w : split_words(texts.back()))
      if (std::islower(static_cast<unsigned char>(w[0]))) lower.insert(w);
  }
  std::erase_if(lists.first_names, [&](const std::string& n) {
    std::string l = n;
    for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
    return lower.count(l) > 0;
  });
  TaskSplits s;
  engine::Rng rng(o.seed);
  for (size_t a = 0; a < all.size(); ++a) {
    for (const std::string& sentence : sentences(texts[a])) {
      const std::vector<std::string> words = split_words(sentence);
      if (words.size() < 5 || words.size() > 80) continue;
      const std::vector<std::string> tags = tag_entities(words, lists);
      const bool any = std::any_of(tags.begin(), tags.end(), [](const std::string& t) { return t != "O"; });
      if (any || rng.below(4) == 0)  // every sentence with an entity, a quarter of the others
        split_of(s, a).push_back({{"tokens", words}, {"labels", tags}});
    }
  }
  limit(s, o);
  return s;
}

namespace {

std::map<int64_t, double> parse_distribution(const std::string& spec) {
  std::map<int64_t, double> out;
  double total = 0;
  std::istringstream in(spec);
  for (std::string pair; std::getline(in, pair, ',');) {
    const size_t colon = pair.find(':');
    if (colon == std::string::npos) throw std::invalid_argument("distractors '" + spec + "': expected count:probability pairs, e.g. 0:0.2,1:0.8");
    try {
      const int64_t k = std::stoll(pair.substr(0, colon));
      const double p = std::stod(pair.substr(colon + 1));
      if (k < 0 || p < 0) throw std::invalid_argument("negative");
      out[k] += p, total += p;
    } catch (const std::exception&) {
      throw std::invalid_argument("distractors '" + spec + "': bad pair '" + pair + "'");
    }
  }
  if (std::abs(total - 1.0) > 1e-3) throw std::invalid_argument(fmt::format("distractors '{}': probabilities sum to {}, not 1", spec, total));
  return out;
}

std::string ordinal(int64_t n) {
  static const char* kWords[] = {"first", "second", "third",   "fourth",   "fifth",   "sixth",    "seventh", "eighth",
                                 "ninth", "tenth",  "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth"};
  return n >= 1 && n <= 15 ? kWords[n - 1] : std::to_string(n) + "th";
}

// One needle example, the reference's _build_one_sample.
nlohmann::json needle_example(const NeedleOptions& o, int64_t distractors, engine::Rng& rng) {
  static const std::string kAlien = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::vector<std::string> needles;
  for (int64_t i = 0; i <= distractors; ++i) {
    std::string n;
    if (o.needle == "number") {
      n = std::to_string(1000000 + rng.below(9000000));
    } else {
      const uint64_t len = 8 + rng.below(5);
      for (uint64_t k = 0; k < len; ++k) n += kAlien[rng.below(kAlien.size())];
    }
    needles.push_back(n);
  }
  const int64_t target = 1 + int64_t(rng.below(uint64_t(distractors + 1)));
  // positions: uniform ratios, sorted, at least 5% apart, rescaled into [0, 1], shuffled
  std::vector<double> ratio(needles.size());
  for (double& r : ratio) r = rng.uniform();
  std::sort(ratio.begin(), ratio.end());
  for (size_t j = 1; j < ratio.size(); ++j) ratio[j] = std::max(ratio[j], ratio[j - 1] + 0.05);
  if (ratio.back() > 1.0)
    for (double& r : ratio) r /= ratio.back();
  std::vector<size_t> perm(ratio.size());
  for (size_t j = 0; j < perm.size(); ++j) perm[j] = j;
  shuffle(perm, rng);
  const std::vector<std::string>& vocab = niah::haystack_words();
  std::vector<std::string> words;
  for (int64_t i = 0; i < o.words - int64_t(needles.size()); ++i) words.push_back(vocab[rng.below(vocab.size())]);
  std::vector<std::pair<size_t, std::string>> at;
  for (size_t j = 0; j < needles.size(); ++j)
    at.push_back({std::min(words.size(), size_t(ratio[perm[j]] * double(words.size()))), needles[j]});
  std::stable_sort(at.begin(), at.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [pos, needle] : at) words.insert(words.begin() + long(pos), needle);
  std::string context;
  for (const std::string& w : words) context += (context.empty() ? "" : " ") + w;
  const std::string& answer = needles[size_t(target - 1)];
  const std::string prefix = "Question: What is the " + ordinal(target) + " special " + o.needle + " in this passage?\nContext: ";
  const int64_t start = int64_t(prefix.size() + context.find(answer));  // ASCII: characters are bytes
  return {{"text", prefix + context},
          {"spans", nlohmann::json::array({{{"start", start}, {"end", start + int64_t(answer.size())}, {"label", "answer"}}})}};
}

}  // namespace

TaskSplits needle_task(const NeedleOptions& o) {
  if (o.needle != "number" && o.needle != "word") throw std::invalid_argument("needle: 'number' or 'word', got '" + o.needle + "'");
  const auto train_dist = parse_distribution(o.train_distractors), eval_dist = parse_distribution(o.eval_distractors);
  const int64_t most = std::max(train_dist.rbegin()->first, eval_dist.rbegin()->first);
  if (o.words < 20 * (most + 1)) throw std::invalid_argument(fmt::format("needle: {} words is too short for {} needles", o.words, most + 1));
  engine::Rng rng(o.seed);
  auto draw = [&](const std::map<int64_t, double>& dist) {
    double u = rng.uniform(), acc = 0;
    for (const auto& [k, p] : dist)
      if (u < (acc += p)) return k;
    return dist.rbegin()->first;
  };
  TaskSplits s;
  for (int64_t i = 0; i < o.train; ++i) s.train.push_back(needle_example(o, draw(train_dist), rng));
  for (int64_t i = 0; i < o.eval; ++i) s.val.push_back(needle_example(o, draw(eval_dist), rng));
  for (int64_t i = 0; i < o.eval; ++i) s.test.push_back(needle_example(o, draw(eval_dist), rng));
  return s;
}

void write_task(const TaskSplits& t, const std::string& dir) {
  fs::create_directories(dir);
  auto write = [&](const std::vector<nlohmann::json>& v, const std::string& name) {
    engine::write_file_atomic(dir + "/" + name, [&](std::ostream& out) {
      for (const auto& j : v) out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    });
  };
  write(t.train, "train.jsonl"), write(t.val, "val.jsonl"), write(t.test, "test.jsonl");
}

}  // namespace data
