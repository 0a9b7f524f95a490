// Flags of one subcommand: declare them, then parse. Declared flags make the --help text;
// an unknown flag, a missing value or a value of the wrong type is one clear error line.
//
//   Args args("tokenize", "Print the token ids of a text.");
//   args.option("text", "STR", "text to encode");
//   args.option("tokenizer", "NAME", "p50k or bytes", "p50k");
//   args.flag("decode", "read ids, print text");
//   if (!args.parse(argc, argv)) return 0;          // --help was printed
//   std::string t = args.str("tokenizer");
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// A user's mistake on the command line; main() prints "avey: <message>" and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(std::string command, std::string summary);

  // A flag that takes a value ("--name VALUE" or "--name=VALUE"); no default means optional.
  void option(const std::string& name, const std::string& metavar, const std::string& help,
              std::optional<std::string> default_value = std::nullopt);
  // A flag with no value ("--name"); false unless given.
  void flag(const std::string& name, const std::string& help);

  // Parses argv[1..]; returns false when --help was asked for (and printed).
  bool parse(int argc, char** argv);

  bool has(const std::string& name) const;  // given on the command line or has a default
  bool given(const std::string& name) const;  // given on the command line
  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  std::vector<std::string> list(const std::string& name) const;  // "a,b,c": the comma-separated items
  std::vector<int64_t> integers(const std::string& name) const;   // "1,2,3"
  bool on(const std::string& name) const;  // value of a flag()
  std::string help() const;

 private:
  struct Spec {
    std::string metavar, help;
    std::optional<std::string> default_value;
    bool is_flag = false;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::string> values_;
};
