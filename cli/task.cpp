// `avey task NAME --out DIR`: a fine-tuning task folder (train.jsonl, val.jsonl, test.jsonl) built
// from real data (data/finetune_tasks.h; the data from scripts/fetch-data --finetune), or the
// encoder needle test generated here. Prints the counts and each split's label shares.
#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "cli/args.h"
#include "cli/command.h"
#include "data/data_dir.h"
#include "data/finetune_tasks.h"

namespace {

// "ham 68.6% | spam 31.4%" (sequence tasks) or "3,120 spans" (token tasks)
std::string shares(const std::vector<nlohmann::json>& v) {
  std::map<std::string, int64_t> count;
  int64_t spans = 0, tagged = 0;
  for (const auto& j : v) {
    if (j.contains("label")) ++count[j["label"].get<std::string>()];
    if (j.contains("spans")) spans += int64_t(j["spans"].size());
    if (j.contains("labels"))
      for (const auto& l : j["labels"]) tagged += l.get<std::string>().rfind("B-", 0) == 0;
  }
  std::string out;
  for (const auto& [l, n] : count) out += fmt::format("{}{} {:.1f}%", out.empty() ? "" : " | ", l, 100.0 * double(n) / double(v.size()));
  if (spans) out = fmt::format("{} spans", spans);
  if (tagged) out = fmt::format("{} entities", tagged);
  return out;
}

int run_task(int argc, char** argv) {
  Args args("task", "Write a fine-tuning task folder (train/val/test.jsonl): spam, sotu-party, fortunes, entities, needle.");
  args.option("name", "NAME", "spam | sotu-party | fortunes | entities | needle");
  args.option("out", "DIR", "the task folder to write");
  args.option("seed", "S", "seed of the splits and of the needle test", "11");
  args.option("max-train", "N", "at most N training examples (0: all)", "0");
  args.option("max-eval", "N", "at most N validation and N test examples (0: all)", "0");
  args.option("needle", "KIND", "needle: number (7 digits) or word (8-12 random letters and digits)", "number");
  args.option("words", "N", "needle: haystack words per example (the reference's context length)", "1000");
  args.option("train", "N", "needle: training examples", "1000");
  args.option("eval", "N", "needle: validation and test examples (each)", "200");
  args.option("train-distractors", "DIST", "needle: distractor counts in training, count:probability,...", "0:0.2,1:0.8");
  args.option("eval-distractors", "DIST", "needle: distractor counts in validation and test", "0:0.4,1:0.6");
  if (!args.parse(argc, argv)) return 0;
  if (!args.has("name") || !args.has("out")) throw UsageError("avey task: --name NAME and --out DIR are required");
  const std::string name = args.str("name"), dir = data::data_dir();
  if (std::filesystem::exists(args.str("out") + "/train.jsonl"))
    throw UsageError("avey task: " + args.str("out") + " already holds a task (train.jsonl); choose another --out");
  const data::TaskOptions o{uint64_t(args.integer("seed")), args.integer("max-train"), args.integer("max-eval")};
  data::TaskSplits t;
  if (name == "spam") t = data::spam_task(dir + "/spam-assassin", o);
  else if (name == "sotu-party") t = data::sotu_party_task(dir + "/sotu", o);
  else if (name == "fortunes") t = data::fortunes_task(dir + "/fortunes", o);
  else if (name == "entities") t = data::entities_task(dir + "/sotu", dir + "/names", o);
  else if (name == "needle")
    t = data::needle_task({args.str("needle"), args.integer("words"), args.integer("train"), args.integer("eval"),
                           args.str("train-distractors"), args.str("eval-distractors"), uint64_t(args.integer("seed"))});
  else throw UsageError("avey task: unknown task '" + name + "' (spam, sotu-party, fortunes, entities, needle)");
  data::write_task(t, args.str("out"));
  for (const auto& [split, v] : {std::pair{"train", &t.train}, std::pair{"val", &t.val}, std::pair{"test", &t.test}})
    fmt::print("{}/{}.jsonl: {} examples ({})\n", args.str("out"), split, v->size(), shares(*v));
  return 0;
}

const RegisterCommand reg{{"task", "write a fine-tuning task folder from real data (or the needle test)", run_task}};

}  // namespace
