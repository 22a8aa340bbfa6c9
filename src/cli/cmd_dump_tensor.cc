// `nanoflow dump-tensor` (hidden): writes tensors' values to stdout (or -o FILE), concatenated in
// the order asked, for the Python reference tests (tests/*/test_loader_*.py).
//   FILE.gguf [NAMES...]          GGUF tensors by file name, dequantized to f32 (all when no names)
//   FILE.safetensors [NAMES...]   raw bytes as stored (all when no names, in offset order)
//   --model PATH NAMES...         canonical weights via WeightStore::read_f32 (--bf16: read_bf16)
//   --list                        one line per tensor: name dtype shape (instead of values)
//   FILE.gguf --metadata          the metadata as one JSON object (arrays as nested lists)
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "loader/dequant.h"
#include "loader/gguf.h"
#include "loader/model_files.h"
#include "loader/safetensors.h"
#include "loader/weights.h"

namespace nanoflow::cli {
namespace {

struct DumpOptions {
  std::string path;
  std::vector<std::string> names;
  std::string out;      // "" = stdout
  bool canonical = false;
  bool bf16 = false;
  bool list = false;
  bool metadata = false;
};

nlohmann::json gguf_json(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString: return v.s;
    case GgufType::kBool: return v.b;
    case GgufType::kFloat32: case GgufType::kFloat64: return v.f;
    case GgufType::kArray: {
      nlohmann::json a = nlohmann::json::array();
      if (!v.items.empty() || gguf_scalar_bytes(v.elem_type) == 0) {
        for (const auto& it : v.items) a.push_back(gguf_json(it));
      } else {
        for (uint64_t k = 0; k < v.count; ++k) {
          if (v.elem_type == GgufType::kBool) {
            a.push_back(v.raw[k] != 0);
          } else if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) {
            a.push_back(v.float_at(k));
          } else if (v.elem_type == GgufType::kUint64) {
            uint64_t u;
            std::memcpy(&u, v.raw.data() + 8 * k, 8);
            a.push_back(u);
          } else {
            a.push_back(v.int_at(k));
          }
        }
      }
      return a;
    }
    default:
      if (v.type == GgufType::kUint64) return v.u;
      return v.i;
  }
}

class Sink {
 public:
  explicit Sink(const std::string& path) : f_(path.empty() ? stdout : std::fopen(path.c_str(), "wb")) {
    if (!f_) NF_THROW(kIo) << "cannot write " << path;
  }
  ~Sink() {
    if (f_ && f_ != stdout) std::fclose(f_);
  }
  void write(const void* p, size_t n) {
    if (std::fwrite(p, 1, n, f_) != n) NF_THROW(kIo) << "write failed";
  }
  void line(const std::string& s) { write((s + "\n").data(), s.size() + 1); }

 private:
  FILE* f_;
};

int run_dump(const DumpOptions& o) {
  Sink sink(o.out);
  if (o.canonical) {
    auto ws = WeightStore::open(o.path);
    std::vector<std::string> names = o.names.empty() ? ws->names() : o.names;
    for (const auto& n : names) {
      const WeightInfo& w = ws->get(n);
      if (o.list) {
        sink.line(n + " " + std::string(dtype_name(w.view.dtype)) + " " + w.view.shape.str());
        continue;
      }
      const size_t numel = static_cast<size_t>(w.view.numel());
      if (o.bf16) {
        std::vector<uint16_t> v(numel);
        ws->read_bf16(n, v.data());
        sink.write(v.data(), numel * 2);
      } else {
        std::vector<float> v(numel);
        ws->read_f32(n, v.data());
        sink.write(v.data(), numel * 4);
      }
    }
    return 0;
  }
  if (is_gguf_path(o.path)) {
    GgufFile f = GgufFile::open(o.path);
    if (o.metadata) {
      nlohmann::ordered_json j;
      for (const auto& k : f.keys()) j[k] = gguf_json(f.get(k));
      sink.line(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return 0;
    }
    std::vector<const GgufTensorInfo*> ts;
    if (o.names.empty())
      for (const auto& t : f.tensors()) ts.push_back(&t);
    for (const auto& n : o.names) {
      const GgufTensorInfo* t = f.find_tensor(n);
      if (!t) NF_THROW(kInvalidInput) << o.path << ": no tensor '" << n << "'";
      ts.push_back(t);
    }
    for (const GgufTensorInfo* t : ts) {
      if (o.list) {
        sink.line(t->name + " " + std::string(dtype_name(t->dtype)) + " " + t->shape.str());
        continue;
      }
      const int64_t numel = t->shape.numel();
      std::vector<float> v(static_cast<size_t>(numel));
      dequantize_to_f32(t->dtype, f.tensor_data(*t), v.data(), numel);
      sink.write(v.data(), v.size() * 4);
    }
    return 0;
  }
  SafetensorsFile f = SafetensorsFile::open(o.path);
  std::vector<const SafetensorsTensor*> ts;
  if (o.names.empty())
    for (const auto& t : f.tensors()) ts.push_back(&t);
  for (const auto& n : o.names) {
    const SafetensorsTensor* t = f.find(n);
    if (!t) NF_THROW(kInvalidInput) << o.path << ": no tensor '" << n << "'";
    ts.push_back(t);
  }
  for (const SafetensorsTensor* t : ts) {
    if (o.list) {
      sink.line(t->name + " " + std::string(dtype_name(t->dtype)) + " " + t->shape.str());
      continue;
    }
    sink.write(f.tensor_data(*t), t->end - t->begin);
  }
  return 0;
}

NF_REGISTER_COMMAND(dump_tensor_cmd, "dump-tensor", "",  // empty help: hidden from --help
                    [](CLI::App* sub) -> std::function<int()> {
                      auto o = std::make_shared<DumpOptions>();
                      sub->group("");
                      sub->add_option("path", o->path, "model file or folder")->required();
                      sub->add_option("names", o->names, "tensor names (all when none)");
                      sub->add_option("-o,--out", o->out, "output file (default stdout)");
                      sub->add_flag("--model", o->canonical, "canonical weights through WeightStore");
                      sub->add_flag("--bf16", o->bf16, "with --model: bf16 instead of f32");
                      sub->add_flag("--list", o->list, "list name dtype shape");
                      sub->add_flag("--metadata", o->metadata, "GGUF: print the metadata as JSON");
                      return [o] { return run_dump(*o); };
                    });

}  // namespace
}  // namespace nanoflow::cli
