// `nanoflow bench`: a command group whose subcommands come from bench_registry() (see bench.h).
#include <algorithm>
#include <memory>
#include <utility>

#include "bench.h"
#include "command.h"

namespace nanoflow::cli {

std::vector<Bench>& bench_registry() {
  static std::vector<Bench> benches;  // function-local: safe against static-init order
  return benches;
}

namespace {

std::function<int()> setup_bench(CLI::App* app) {
  app->require_subcommand(1);
  auto& benches = bench_registry();
  std::sort(benches.begin(), benches.end(), [](auto& a, auto& b) { return a.name < b.name; });
  auto actions = std::make_shared<std::vector<std::pair<CLI::App*, std::function<int()>>>>();
  for (auto& b : benches) {
    CLI::App* sub = app->add_subcommand(b.name, b.help);
    actions->emplace_back(sub, b.setup(sub));
  }
  return [actions]() {
    for (auto& [sub, action] : *actions)
      if (sub->parsed()) return action();
    return 1;
  };
}

}  // namespace

NF_REGISTER_COMMAND(bench_command, "bench", "benchmarks (tokenizer, ops, roofline, throughput, ...)",
                    setup_bench);

}  // namespace nanoflow::cli
