// The `avey` command's subcommands. Each cli/<name>.cpp defines one and registers it with
//   static const RegisterCommand reg{{"train", "train a model", run_train}};
// and `avey` with no arguments (or --help) lists them.
#pragma once
#include <string>
#include <vector>

struct Command {
  std::string name;
  std::string summary;
  int (*run)(int argc, char** argv);  // argv[0] is the subcommand's name
};

std::vector<Command>& commands();

struct RegisterCommand {
  explicit RegisterCommand(Command c) { commands().push_back(std::move(c)); }
};
