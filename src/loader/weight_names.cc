// Hugging Face and GGUF tensor names -> canonical names (list in loader/weights.h).
#include <charconv>
#include <string_view>

#include "core/error.h"
#include "weight_store_impl.h"

namespace nanoflow::detail {
namespace {

// Splits "<prefix><int>.<rest>" into (int, rest); false when the shape does not match.
bool split_layer(std::string_view name, std::string_view prefix, std::string* index, std::string_view* rest) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 6) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + dot, v);
  if (ec != std::errc() || p != name.data() + dot) return false;
  if (dot > 1 && name[0] == '0') return false;  // no leading zeros: one spelling per layer
  *index = std::string(name.substr(0, dot));
  *rest = name.substr(dot + 1);
  return true;
}

struct Pair {
  std::string_view from, to;
};

[[noreturn]] void unknown(const std::string& name, const std::string& source) {
  NF_THROW(kUnsupported) << source << ": tensor '" << name << "' is not used by any supported architecture";
}

}  // namespace

std::string canonical_from_hf(const std::string& name, const std::string& source) {
  if (name == "model.embed_tokens.weight") return "embed_tokens";
  if (name == "model.norm.weight") return "final_norm";
  if (name == "lm_head.weight") return "lm_head";
  if (name.ends_with("rotary_emb.inv_freq")) return "";  // old checkpoints carry a RoPE cache
  std::string layer;
  std::string_view rest;
  if (!split_layer(name, "model.layers.", &layer, &rest)) unknown(name, source);
  static constexpr Pair kLayer[] = {
      {"input_layernorm.weight", "attn_norm"},        {"post_attention_layernorm.weight", "mlp_norm"},
      {"self_attn.q_proj.weight", "q_proj"},          {"self_attn.k_proj.weight", "k_proj"},
      {"self_attn.v_proj.weight", "v_proj"},          {"self_attn.o_proj.weight", "o_proj"},
      {"self_attn.q_proj.bias", "q_bias"},            {"self_attn.k_proj.bias", "k_bias"},
      {"self_attn.v_proj.bias", "v_bias"},            {"mlp.gate_proj.weight", "gate_proj"},
      {"mlp.up_proj.weight", "up_proj"},              {"mlp.down_proj.weight", "down_proj"},
      {"block_sparse_moe.gate.weight", "router"},
  };
  for (const auto& p : kLayer)
    if (rest == p.from) return "layers." + layer + "." + std::string(p.to);
  // Mixtral experts: block_sparse_moe.experts.{e}.w1 (gate) / w2 (down) / w3 (up).
  std::string expert;
  std::string_view w;
  if (split_layer(rest, "block_sparse_moe.experts.", &expert, &w)) {
    static constexpr Pair kExpert[] = {{"w1.weight", "gate_proj"}, {"w2.weight", "down_proj"}, {"w3.weight", "up_proj"}};
    for (const auto& p : kExpert)
      if (w == p.from) return "layers." + layer + ".experts." + expert + "." + std::string(p.to);
  }
  unknown(name, source);
}

std::string canonical_from_gguf(const std::string& name, const std::string& source) {
  if (name == "token_embd.weight") return "embed_tokens";
  if (name == "output_norm.weight") return "final_norm";
  if (name == "output.weight") return "lm_head";
  if (name == "rope_freqs.weight") return "";  // llama3 rope factors; we compute them from the config
  std::string layer;
  std::string_view rest;
  if (!split_layer(name, "blk.", &layer, &rest)) unknown(name, source);
  // Merged expert tensors (ffn_*_exps) are split per expert by the GGUF loader, which maps them
  // to "layers.{i}.experts.*" itself.
  static constexpr Pair kLayer[] = {
      {"attn_norm.weight", "attn_norm"}, {"ffn_norm.weight", "mlp_norm"},   {"attn_q.weight", "q_proj"},
      {"attn_k.weight", "k_proj"},       {"attn_v.weight", "v_proj"},       {"attn_output.weight", "o_proj"},
      {"attn_q.bias", "q_bias"},         {"attn_k.bias", "k_bias"},         {"attn_v.bias", "v_bias"},
      {"ffn_gate.weight", "gate_proj"},  {"ffn_up.weight", "up_proj"},      {"ffn_down.weight", "down_proj"},
      {"ffn_gate_inp.weight", "router"}, {"ffn_gate_exps.weight", "experts.*.gate_proj"},
      {"ffn_up_exps.weight", "experts.*.up_proj"}, {"ffn_down_exps.weight", "experts.*.down_proj"},
  };
  for (const auto& p : kLayer)
    if (rest == p.from) return "layers." + layer + "." + std::string(p.to);
  // Older per-expert layout: blk.{i}.ffn_gate.{e}.weight
  static constexpr Pair kOld[] = {{"ffn_gate.", "gate_proj"}, {"ffn_up.", "up_proj"}, {"ffn_down.", "down_proj"}};
  for (const auto& p : kOld) {
    std::string expert;
    std::string_view tail;
    if (split_layer(rest, p.from, &expert, &tail) && tail == "weight")
      return "layers." + layer + ".experts." + expert + "." + std::string(p.to);
  }
  unknown(name, source);
}

}  // namespace nanoflow::detail
