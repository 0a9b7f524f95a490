// `avey`: the engine's one command. Subcommands live in cli/<name>.cpp and register themselves.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>

#include "cli/args.h"
#include "cli/command.h"

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

static void print_usage() {
  auto all = commands();
  std::sort(all.begin(), all.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::string out = "usage: avey <command> [flags]   (avey <command> --help for its flags)\n\ncommands:\n";
  for (const auto& c : all) out += fmt::format("  {:<12} {}\n", c.name, c.summary);
  std::fputs(out.c_str(), stdout);
}

// The error line, on stderr and, for a worker of avey train --nproc-per-node (cli/launch.h), in
// the file AVEY_ERROR_FILE names: its launcher shows it when the worker's stderr is dropped.
static void report(const std::string& line) {
  fmt::print(stderr, "{}\n", line);
  if (const char* file = std::getenv("AVEY_ERROR_FILE")) std::ofstream(file) << line << "\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  for (const auto& c : commands()) {
    if (c.name != name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const UsageError& e) {
      report(e.what());
      return 2;
    } catch (const std::exception& e) {
      report(fmt::format("avey {}: error: {}", name, e.what()));
      return 1;
    }
  }
  fmt::print(stderr, "avey: unknown command '{}' (see avey --help)\n", name);
  return 2;
}
