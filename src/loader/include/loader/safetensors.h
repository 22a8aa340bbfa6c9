// safetensors reader: one file, memory-mapped, zero copy; and the index of a sharded folder.
//
// File layout: u64 N (little-endian) | N bytes of UTF-8 JSON header | data.
//   header = { "<name>": {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}, ...,
//              "__metadata__": {"k": "v", ...} (optional, strings only) }
//   offsets are relative to the first data byte (8 + N).
// Validation (RELIABILITY.md "Model files"): N <= 100 MB and inside the file, the header is a UTF-8
// JSON object with no duplicate names, every entry well-formed, shape x dtype == end - begin, and the
// tensors tile the data section exactly (no gaps, no overlaps, nothing after the last one).
// Errors are Error(kBadFile) (kUnsupported for dtypes we do not handle) naming the file and reason.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mmap.h"
#include "core/tensor.h"

namespace nanoflow {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0;  // relative to the data section
  uint64_t end = 0;
};

// Maps a safetensors dtype string ("F32", "BF16", "I64", ...) to our DType; false when unknown.
bool safetensors_dtype(std::string_view name, DType* out);

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

  static SafetensorsFile open(const std::string& path);
  // Parses bytes the caller keeps alive (fuzzing, tests); `source` names them in errors.
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& source);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& source() const { return source_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by offset
  const SafetensorsTensor* find(std::string_view name) const;
  const uint8_t* tensor_data(const SafetensorsTensor& t) const { return base_ + data_offset_ + t.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  void parse_all();
  void parse_unchecked();

  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string source_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// model.safetensors.index.json: tensor name -> shard file name (a plain file name inside the
// folder; paths that could leave the folder are refused).
struct SafetensorsIndex {
  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards() const;  // distinct file names, sorted
};
SafetensorsIndex parse_safetensors_index(const std::string& json_text, const std::string& source);

}  // namespace nanoflow
