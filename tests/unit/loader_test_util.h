// Builders of small (often deliberately malformed) safetensors / GGUF byte strings for loader tests.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace nanoflow::test {

using Bytes = std::vector<uint8_t>;

template <class T>
void put(Bytes& b, T v) {
  uint8_t tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  b.insert(b.end(), tmp, tmp + sizeof(T));
}
inline void put_str(Bytes& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

// safetensors: u64 header length | header | data
inline Bytes safetensors_bytes(const std::string& header, size_t data_bytes, uint8_t fill = 0x3c) {
  Bytes b;
  put<uint64_t>(b, header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data_bytes, fill);
  return b;
}

// A GGUF writer with knobs for the malformed cases. Tensors are described, their data zero-filled
// (or `data_bytes` overridden).
struct GgufSpec {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;          // written as general.alignment when != 32 or force_alignment_kv
  bool force_alignment_kv = false;
  struct Kv {
    std::string key;
    std::function<void(Bytes&)> write;  // writes type + value
  };
  std::vector<Kv> kvs;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // ggml order: ne[0] innermost
    uint32_t type = 0;         // ggml type id
    uint64_t offset = 0;
    uint64_t nbytes = 0;       // bytes this tensor's data takes (for the data section size)
  };
  std::vector<Tensor> tensors;
  int64_t tensor_count_override = -1;
  int64_t kv_count_override = -1;
  int64_t data_bytes_delta = 0;  // e.g. -1: data one byte short
  int64_t data_bytes_override = -1;  // data section size regardless of the tensors (lying offsets)

  void add_u32(const std::string& k, uint32_t v) {
    kvs.push_back({k, [v](Bytes& b) { put<uint32_t>(b, 4); put<uint32_t>(b, v); }});
  }
  void add_f32(const std::string& k, float v) {
    kvs.push_back({k, [v](Bytes& b) { put<uint32_t>(b, 6); put<float>(b, v); }});
  }
  void add_str(const std::string& k, const std::string& v) {
    kvs.push_back({k, [v](Bytes& b) { put<uint32_t>(b, 8); put_str(b, v); }});
  }
  // Appends f32 tensor descriptions laid out back to back (aligned).
  void add_f32_tensor(const std::string& name, std::vector<uint64_t> ne) {
    uint64_t n = 1;
    for (auto d : ne) n *= d;
    uint64_t off = 0;
    if (!tensors.empty()) {
      const auto& last = tensors.back();
      off = (last.offset + last.nbytes + alignment - 1) / alignment * alignment;
    }
    tensors.push_back({name, std::move(ne), 0, off, n * 4});
  }

  Bytes build() const {
    Bytes b;
    put<uint32_t>(b, magic);
    put<uint32_t>(b, version);
    const bool align_kv = alignment != 32 || force_alignment_kv;
    put<uint64_t>(b, tensor_count_override >= 0 ? uint64_t(tensor_count_override) : tensors.size());
    put<uint64_t>(b, kv_count_override >= 0 ? uint64_t(kv_count_override) : kvs.size() + (align_kv ? 1 : 0));
    if (align_kv) {
      put_str(b, "general.alignment");
      put<uint32_t>(b, 4);
      put<uint32_t>(b, static_cast<uint32_t>(alignment));
    }
    for (const auto& kv : kvs) {
      put_str(b, kv.key);
      kv.write(b);
    }
    uint64_t data_end = 0;
    for (const auto& t : tensors) {
      put_str(b, t.name);
      put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
      for (auto d : t.ne) put<uint64_t>(b, d);
      put<uint32_t>(b, t.type);
      put<uint64_t>(b, t.offset);
      data_end = std::max(data_end, t.offset + t.nbytes);
    }
    const uint64_t a = alignment ? alignment : 1;
    while (b.size() % a) b.push_back(0);
    const int64_t data = data_bytes_override >= 0 ? data_bytes_override : static_cast<int64_t>(data_end) + data_bytes_delta;
    b.insert(b.end(), static_cast<size_t>(std::max<int64_t>(data, 0)), 0);
    return b;
  }
};

// Expects `fn` to throw nanoflow::Error whose message contains every one of `needles`.
template <class Fn>
void expect_refusal(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected a refusal mentioning '" << *needles.begin() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nmissing: " << n;
  }
}

// A scratch folder under the system temp dir, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("nf_loader_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const Bytes& b) const {
    const auto p = path / name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return p.string();
  }
  std::string write(const std::string& name, const std::string& s) const { return write(name, Bytes(s.begin(), s.end())); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

}  // namespace nanoflow::test
