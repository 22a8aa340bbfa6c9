// nanoflow: one binary, subcommands registered by cmd_*.cc.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "command.h"
#include "core/error.h"

namespace nanoflow::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace nanoflow::cli

int main(int argc, char** argv) {
  using namespace nanoflow::cli;
  CLI::App app{"nanoflow: a throughput-first LLM serving engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", NANOFLOW_VERSION);
  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    actions.emplace_back(sub, c.setup(sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const nanoflow::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
