// `nanoflow bench <name>` registry: each benchmark lives in its own cmd_bench_<name>.cc and
// registers itself here, so adding one edits no other file (same pattern as command.h).
//   NF_REGISTER_BENCH(bench_ops, "ops", "per-op benchmarks", [](CLI::App* sub) { ...; return run; });
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace nanoflow::cli {

// setup() adds options to `sub` (the `bench <name>` subcommand) and returns the action that runs
// once parsing succeeded; the action returns the process exit code.
struct Bench {
  std::string name;
  std::string help;
  std::function<std::function<int()>(CLI::App* sub)> setup;
};

std::vector<Bench>& bench_registry();

struct BenchRegistrar {
  explicit BenchRegistrar(Bench b) { bench_registry().push_back(std::move(b)); }
};

}  // namespace nanoflow::cli

#define NF_REGISTER_BENCH(var, ...) \
  static ::nanoflow::cli::BenchRegistrar var { ::nanoflow::cli::Bench{__VA_ARGS__} }
