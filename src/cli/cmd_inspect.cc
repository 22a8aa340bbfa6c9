// `nanoflow inspect MODEL`: what a model folder / GGUF file holds, without running it.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "loader/model_files.h"
#include "loader/weights.h"

namespace nanoflow::cli {
namespace {

namespace fs = std::filesystem;

// 3 significant digits with a unit: 134515008 -> "135M", 8030261248 -> "8.03B".
std::string human_count(double n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  int u = 0;
  while (n >= 999.5 && u < 4) {
    n /= 1000.0;
    ++u;
  }
  char buf[32];
  const int decimals = n >= 99.95 ? 0 : n >= 9.995 ? 1 : 2;
  std::snprintf(buf, sizeof buf, "%.*f%s", u ? decimals : 0, n, units[u]);
  return buf;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

bool has_weights(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return true;  // a .gguf file
  return fs::exists(fs::path(path) / "model.safetensors") || fs::exists(fs::path(path) / "model.safetensors.index.json");
}

int run_inspect(const std::string& path, bool as_json) {
  std::unique_ptr<WeightStore> store;
  ModelConfig c;
  if (has_weights(path)) {
    store = WeightStore::open(path);
    c = store->config();
  } else {
    c = read_model_config(path);
  }
  std::map<std::string, int64_t> dtype_counts;
  uint64_t weight_bytes = 0;
  if (store) {
    for (const std::string& n : store->names()) {
      const TensorView& v = store->get(n).view;
      ++dtype_counts[std::string(dtype_name(v.dtype))];
      weight_bytes += v.nbytes();
    }
  }
  const int64_t params = c.param_count();
  const int64_t kv_bf16 = c.kv_bytes_per_token(2);

  if (as_json) {
    nlohmann::ordered_json j;
    j["name"] = c.name;
    j["architecture"] = c.architecture;
    j["layers"] = c.num_layers;
    j["heads"] = c.num_heads;
    j["kv_heads"] = c.num_kv_heads;
    j["head_dim"] = c.head_dim;
    j["hidden"] = c.hidden_size;
    j["intermediate"] = c.intermediate_size;
    j["vocab"] = c.vocab_size;
    j["experts"] = c.num_experts;
    j["experts_per_tok"] = c.num_experts_per_tok;
    j["tied_embeddings"] = c.tie_word_embeddings;
    j["attention_bias"] = c.attention_bias;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = c.rope_scaling == RopeScaling::kLlama3 ? "llama3" : "none";
    j["parameters"] = params;
    j["parameters_human"] = human_count(static_cast<double>(params));
    j["dtypes"] = dtype_counts;
    j["weights"] = store != nullptr;
    j["weight_bytes"] = weight_bytes;
    j["kv_bytes_per_token_bf16"] = kv_bf16;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto row = [](const char* k, const std::string& v) { std::printf("%-22s %s\n", k, v.c_str()); };
  auto num = [](int64_t v) { return std::to_string(v); };
  row("model", c.name);
  row("architecture", c.architecture);
  row("layers", num(c.num_layers));
  row("heads", num(c.num_heads));
  row("kv heads", num(c.num_kv_heads));
  row("head dim", num(c.head_dim));
  row("hidden", num(c.hidden_size));
  row("intermediate", num(c.intermediate_size) + (c.num_experts ? " (per expert)" : ""));
  row("vocab", num(c.vocab_size));
  row("experts", c.num_experts ? num(c.num_experts) + " (top-" + num(c.num_experts_per_tok) + ")" : "none (dense)");
  row("tied embeddings", c.tie_word_embeddings ? "yes" : "no");
  row("qkv bias", c.attention_bias ? "yes" : "no");
  row("context", num(c.max_position_embeddings));
  char theta[64];
  std::snprintf(theta, sizeof theta, "%g%s", c.rope_theta,
                c.rope_scaling == RopeScaling::kLlama3 ? " (llama3 scaling)" : "");
  row("rope theta", theta);
  row("parameters", human_count(static_cast<double>(params)) + " (" + num(params) + ")");
  if (store) {
    std::string d;
    for (const auto& [name, count] : dtype_counts) d += (d.empty() ? "" : ", ") + name + ": " + num(count);
    row("dtypes", d);
    row("weight bytes", human_bytes(static_cast<double>(weight_bytes)) + " (" + std::to_string(weight_bytes) + ")");
  } else {
    row("weights", "none (config only)");
  }
  row("KV bytes per token", human_bytes(static_cast<double>(kv_bf16)) + " (bf16, " + num(kv_bf16) + ")");
  return 0;
}

NF_REGISTER_COMMAND(inspect_cmd, "inspect", "Show a model's architecture, sizes and weight types",
                    [](CLI::App* sub) -> std::function<int()> {
                      auto path = std::make_shared<std::string>();
                      auto as_json = std::make_shared<bool>(false);
                      sub->add_option("model", *path, "model folder (config.json [+ safetensors]) or .gguf file")->required();
                      sub->add_flag("--json", *as_json, "print JSON");
                      return [path, as_json] { return run_inspect(*path, *as_json); };
                    });

}  // namespace
}  // namespace nanoflow::cli
