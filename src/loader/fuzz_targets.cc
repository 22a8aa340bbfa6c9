#include "loader/fuzz_targets.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "loader/dequant.h"
#include "loader/gguf.h"
#include "loader/model_config.h"
#include "loader/model_files.h"
#include "loader/safetensors.h"

namespace nanoflow {
namespace {

// Reads every byte so that ASan sees any view pointing outside the input.
uint64_t touch(const uint8_t* p, uint64_t n) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

volatile uint64_t g_sink;  // keeps the reads from being optimized away

}  // namespace

void fuzz_safetensors(const uint8_t* data, size_t size) {
  try {
    SafetensorsFile f = SafetensorsFile::parse(data, size, "fuzz.safetensors");
    uint64_t s = 0;
    for (const auto& t : f.tensors()) {
      s += touch(f.tensor_data(t), t.end - t.begin);
      if (f.find(t.name) != &t) s += 1;  // lookup consistency (cannot fail for a valid parse)
    }
    g_sink = s;
  } catch (const Error&) {
  }
}

void fuzz_gguf(const uint8_t* data, size_t size) {
  try {
    GgufFile f = GgufFile::parse(data, size, "fuzz.gguf");
    uint64_t s = 0;
    for (const auto& key : f.keys()) {
      const GgufValue& v = f.get(key);
      if (v.type != GgufType::kArray) continue;
      try {
        if (gguf_type_is_integer(v.elem_type)) s += f.get_int_array(key).size();
        if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) s += f.get_float_array(key).size();
        if (v.elem_type == GgufType::kString) s += f.get_string_array(key).size();
      } catch (const Error&) {
      }
    }
    std::vector<float> buf;
    for (const auto& t : f.tensors()) {
      s += touch(f.tensor_data(t), t.nbytes);
      if (!can_convert_to_float(t.dtype)) continue;
      // Dequantize at most a bounded prefix (whole rows) to keep each run fast.
      const int64_t cols = t.shape[t.shape.ndim() - 1];
      const int64_t n = std::min<int64_t>(t.shape.numel(), std::max<int64_t>(cols, 4096) / cols * cols);
      buf.resize(static_cast<size_t>(n));
      dequantize_to_f32(t.dtype, f.tensor_data(t), buf.data(), n);
    }
    try {
      ModelConfig c = gguf_model_config(f);
      s += static_cast<uint64_t>(c.param_count());
    } catch (const Error&) {
    }
    g_sink = s;
  } catch (const Error&) {
  }
}

void fuzz_config_json(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ModelConfig c = parse_hf_config(text, "fuzz/config.json");
    g_sink = static_cast<uint64_t>(c.param_count() + c.kv_bytes_per_token());
  } catch (const Error&) {
  }
  try {
    SafetensorsIndex idx = parse_safetensors_index(text, "fuzz/model.safetensors.index.json");
    g_sink = idx.shards().size();
  } catch (const Error&) {
  }
}

}  // namespace nanoflow
