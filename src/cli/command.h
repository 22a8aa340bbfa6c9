// Subcommand registry: each cmd_<name>.cc registers itself, so adding a command edits no other file.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace nanoflow::cli {

// setup() adds options to `sub` and returns the action that runs once parsing succeeded; the
// action returns the process exit code.
struct Command {
  std::string name;
  std::string help;
  std::function<std::function<int()>(CLI::App* sub)> setup;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry().push_back(std::move(c)); }
};

}  // namespace nanoflow::cli

#define NF_REGISTER_COMMAND(var, ...) \
  static ::nanoflow::cli::CommandRegistrar var { ::nanoflow::cli::Command{__VA_ARGS__} }
