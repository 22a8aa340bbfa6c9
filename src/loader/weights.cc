// WeightStore: opening by path, lookup, config checks and conversion (with GGUF Q/K un-permutation).
#include "loader/weights.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "loader/dequant.h"
#include "loader/model_files.h"
#include "weight_store_impl.h"

namespace nanoflow {

std::unique_ptr<WeightStore> WeightStore::open(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return detail::open_hf_folder(path);
  if (!std::filesystem::exists(path, ec)) NF_THROW(kIo) << path << ": no such file or folder";
  if (is_gguf_path(path)) return detail::open_gguf(path);
  NF_THROW(kBadFile) << path << ": not a model folder or a .gguf file";
}

namespace detail {

std::vector<std::string> MappedWeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(weights_.size());
  for (const auto& [name, w] : weights_) out.push_back(name);
  return out;
}

const WeightInfo& MappedWeightStore::get(const std::string& name) const {
  auto it = weights_.find(name);
  if (it == weights_.end()) NF_THROW(kBadFile) << source << ": no weight '" << name << "'";
  return it->second;
}

void MappedWeightStore::add(WeightInfo w) {
  if (weights_.count(w.name))
    NF_THROW(kBadFile) << w.file << ": two tensors map onto the weight '" << w.name << "'";
  std::string key = w.name;
  weights_.emplace(std::move(key), std::move(w));
}

void MappedWeightStore::check_against_config() const {
  const ModelConfig& c = config_;
  std::vector<std::pair<std::string, Shape>> expect;
  expect.push_back({"embed_tokens", {c.vocab_size, c.hidden_size}});
  expect.push_back({"final_norm", {c.hidden_size}});
  if (!c.tie_word_embeddings) expect.push_back({"lm_head", {c.vocab_size, c.hidden_size}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    expect.push_back({p + "attn_norm", {c.hidden_size}});
    expect.push_back({p + "mlp_norm", {c.hidden_size}});
    expect.push_back({p + "q_proj", {c.q_dim(), c.hidden_size}});
    expect.push_back({p + "k_proj", {c.kv_dim(), c.hidden_size}});
    expect.push_back({p + "v_proj", {c.kv_dim(), c.hidden_size}});
    expect.push_back({p + "o_proj", {c.hidden_size, c.q_dim()}});
    if (c.attention_bias) {
      expect.push_back({p + "q_bias", {c.q_dim()}});
      expect.push_back({p + "k_bias", {c.kv_dim()}});
      expect.push_back({p + "v_bias", {c.kv_dim()}});
    }
    if (c.num_experts == 0) {
      expect.push_back({p + "gate_proj", {c.intermediate_size, c.hidden_size}});
      expect.push_back({p + "up_proj", {c.intermediate_size, c.hidden_size}});
      expect.push_back({p + "down_proj", {c.hidden_size, c.intermediate_size}});
    } else {
      expect.push_back({p + "router", {c.num_experts, c.hidden_size}});
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string q = p + "experts." + std::to_string(e) + ".";
        expect.push_back({q + "gate_proj", {c.intermediate_size, c.hidden_size}});
        expect.push_back({q + "up_proj", {c.intermediate_size, c.hidden_size}});
        expect.push_back({q + "down_proj", {c.hidden_size, c.intermediate_size}});
      }
    }
  }
  // The vocabulary check first: it is the most common mismatch and deserves its own message.
  if (auto it = weights_.find("embed_tokens"); it != weights_.end() && it->second.view.shape.ndim() == 2 &&
                                              it->second.view.shape[0] != c.vocab_size)
    NF_THROW(kBadFile) << it->second.file << ": vocab_size " << c.vocab_size << " != embedding rows "
                       << it->second.view.shape[0];
  for (const auto& [name, shape] : expect) {
    auto it = weights_.find(name);
    if (it == weights_.end()) NF_THROW(kBadFile) << source << ": missing weight '" << name << "'";
    if (!(it->second.view.shape == shape))
      NF_THROW(kBadFile) << it->second.file << ": weight '" << name << "' has shape " << it->second.view.shape.str()
                         << ", the config implies " << shape.str();
    if (!can_convert_to_float(it->second.view.dtype))
      NF_THROW(kUnsupported) << it->second.file << ": weight '" << name << "' has type " << dtype_name(it->second.view.dtype)
                             << ", which we cannot convert";
  }
  // Nothing beyond what the config implies (e.g. more layers than num_hidden_layers).
  if (weights_.size() != expect.size() + (c.tie_word_embeddings && weights_.count("lm_head") ? 1 : 0)) {
    std::map<std::string, int> expected;
    for (const auto& e : expect) expected[e.first] = 1;
    for (const auto& [name, w] : weights_)
      if (!expected.count(name) && name != "lm_head")
        NF_THROW(kBadFile) << w.file << ": weight '" << name << "' is not part of the configured model";
  }
}

}  // namespace detail

namespace {

// Converts a whole weight row by row. GGUF llama Q/K rows are stored per head as interleaved pairs
// (file row 2j + half holds HF row half*D/2 + j of the head, D = head_dim); `permuted_qk` undoes it.
template <class Out, class RowFn>
void convert_rows(const WeightStore& ws, const std::string& name, Out* out, RowFn row_fn) {
  const WeightInfo& w = ws.get(name);
  const TensorView& v = w.view;
  const int64_t numel = v.numel();
  if (!can_convert_to_float(v.dtype))
    NF_THROW(kUnsupported) << w.file << ": weight '" << name << "' has type " << dtype_name(v.dtype) << ", not convertible to float";
  const int64_t cols = v.shape.ndim() ? v.shape[v.shape.ndim() - 1] : 1;
  const int64_t rows = cols ? numel / cols : 0;
  const uint64_t row_bytes = dtype_bytes(v.dtype, static_cast<uint64_t>(cols));
  const auto* src = static_cast<const uint8_t*>(v.data);
  if (!w.permuted_qk) {
    row_fn(v.dtype, src, out, numel);
    return;
  }
  const int64_t d = ws.config().head_dim;
  NF_CHECK_FILE(d > 0 && d % 2 == 0 && rows % d == 0)
      << w.file << ": cannot un-permute '" << name << "' of " << rows << " rows with head_dim " << d;
  if (v.shape.ndim() == 1) {  // a bias: one value per row
    std::vector<float> tmp(static_cast<size_t>(rows));
    dequantize_to_f32(v.dtype, src, tmp.data(), rows);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t head = r / d, j = (r % d) % (d / 2), half = (r % d) / (d / 2);
      const float x = tmp[static_cast<size_t>(head * d + 2 * j + half)];
      row_fn(DType::kF32, reinterpret_cast<const uint8_t*>(&x), out + r, 1);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {  // r = HF row
    const int64_t head = r / d, j = (r % d) % (d / 2), half = (r % d) / (d / 2);
    const int64_t file_row = head * d + 2 * j + half;
    row_fn(v.dtype, src + static_cast<uint64_t>(file_row) * row_bytes, out + r * cols, cols);
  }
}

}  // namespace

void WeightStore::read_f32(const std::string& name, float* out) const {
  convert_rows(*this, name, out, [](DType t, const uint8_t* s, float* o, int64_t n) { dequantize_to_f32(t, s, o, n); });
}

void WeightStore::read_bf16(const std::string& name, uint16_t* out) const {
  convert_rows(*this, name, out, [](DType t, const uint8_t* s, uint16_t* o, int64_t n) { convert_to_bf16(t, s, o, n); });
}

}  // namespace nanoflow
