// `avey score`: zero-shot multiple-choice accuracy (acc, acc_norm) of a model on a task file, by
// lm-evaluation-harness's rules (score_tasks.h).
#include <fmt/format.h>

#include <map>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/json_fields.h"
#include "cli/model_folder.h"
#include "cli/run_data.h"
#include "cli/score_tasks.h"

namespace {

int run_score(int argc, char** argv) {
  Args args("score", "Zero-shot multiple-choice accuracy on a task file (lm-evaluation-harness rules).");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("tasks", "FILE", "JSON lines {\"context\": ..., \"choices\": [...], \"gold\": i, \"task\": name}");
  args.option("delimiter", "STR", "put between the context and each choice", " ");
  args.option("max-length", "N", "tokens the model reads at most (lm-evaluation-harness's default)", "2048");
  args.option("limit", "N", "score only the first N questions (0: all)", "0");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("json", "print {task: {\"n\", \"acc\", \"acc_stderr\", \"acc_norm\", \"acc_norm_stderr\"}}");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("tasks")) throw UsageError("avey score: --tasks is required");
  const int64_t max_length = args.integer("max-length"), limit = args.integer("limit");
  if (max_length < 1 || limit < 0) throw UsageError("avey score: --max-length must be >= 1 and --limit >= 0");

  std::vector<Question> questions = parse_questions(read_text_file(args.str("tasks")), args.str("tasks"));
  if (limit > 0 && limit < int64_t(questions.size())) questions.resize(size_t(limit));
  const ModelFolder folder = open_model_folder(args.str("checkpoint"));
  if (folder.spec.config.is_encoder())
    throw UsageError("avey score: " + args.str("checkpoint") + " holds an avey-b encoder: it does not score continuations");
  auto tok = tokenizer_for(folder.spec.tokenizer, folder.spec.config);
  const engine::Device device = resolve_device(args.str("device"));
  auto model = load_model(folder, device, resolve_precision("auto", device));

  std::map<std::string, std::vector<Outcome>> by_task;
  std::vector<Outcome> all;
  const size_t every = std::max<size_t>(1, questions.size() / 20);
  for (size_t i = 0; i < questions.size(); ++i) {
    const Question& q = questions[i];
    std::vector<double> lls;
    for (const std::string& choice : q.choices)
      lls.push_back(loglikelihood(*model, encode_request(*tok, q.context, args.str("delimiter") + choice), max_length));
    const Outcome o = judge(q, lls);
    by_task[q.task].push_back(o);
    all.push_back(o);
    if ((i + 1) % every == 0 || i + 1 == questions.size())
      fmt::print(stderr, "score: {}/{} questions | acc {:.4f}\n", i + 1, questions.size(), summarise(all).acc);
  }
  if (by_task.size() > 1) by_task["all"] = all;

  nlohmann::ordered_json j;
  for (const auto& [task, outcomes] : by_task) {
    const Score s = summarise(outcomes);
    auto number = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
    j[task] = {{"n", s.n}, {"acc", s.acc}, {"acc_stderr", number(s.acc_stderr)}, {"acc_norm", s.acc_norm},
               {"acc_norm_stderr", number(s.acc_norm_stderr)}};
    if (!args.on("json"))
      fmt::print("{:<24} n {:>6} | acc {:.4f} ± {:.4f} | acc_norm {:.4f} ± {:.4f}\n", task, s.n, s.acc, s.acc_stderr,
                 s.acc_norm, s.acc_norm_stderr);
  }
  if (args.on("json")) fmt::print("{}\n", j.dump());
  return 0;
}

const RegisterCommand reg{{"score", "zero-shot multiple-choice accuracy on a task file", run_score}};

}  // namespace
