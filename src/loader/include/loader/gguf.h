// GGUF v2/v3 reader: metadata (every value type, nested arrays), tensor infos and the data section.
//
// File layout (little-endian):
//   u32 magic "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//       string = u64 length + bytes (no NUL); array = u32 elem_type + u64 count + elements
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | data section (tensor offsets are relative to it,
//   each a multiple of the alignment)
// ggml's ne[0] is the innermost (fastest) dimension; GgufTensorInfo::shape is row-major (reversed).
//
// Everything is validated on open: counts are capped by the bytes left in the file (so a lying
// header never makes us allocate), strings/dims/types are checked, tensor data must lie inside the
// file without overlaps. Errors are Error(kBadFile) naming the file and the reason.
//
// Usage (tokenizer):
//   GgufFile f = GgufFile::open(path);
//   std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
//   int64_t bos = f.get_int("tokenizer.ggml.bos_token_id", -1);
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

// GGUF metadata value types (numbering from the GGUF specification).
enum class GgufType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
std::string_view gguf_type_name(GgufType t);
bool gguf_type_is_integer(GgufType t);
uint32_t gguf_scalar_bytes(GgufType t);  // 0 for string/array

// One metadata value. Scalars are widened (all integers -> i/u, floats -> f). Arrays of numbers or
// bools stay packed in the file (`raw`, zero copy; read them with *_at or GgufFile::get_*_array);
// arrays of strings or arrays hold `items`. Values live as long as their GgufFile.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  int64_t i = 0;       // signed integer types, and unsigned ones that fit
  uint64_t u = 0;      // unsigned integer types (exact), and signed ones that are >= 0
  double f = 0;        // kFloat32 / kFloat64
  bool b = false;      // kBool
  std::string s;       // kString (bytes as stored; GGUF says UTF-8 but this reader does not enforce it)
  // kArray:
  GgufType elem_type = GgufType::kUint8;  // the type of every item
  uint64_t count = 0;                     // number of items
  std::string_view raw;                   // numeric/bool items: count x sizeof(elem) bytes, little-endian
  std::vector<GgufValue> items;           // string/array items

  bool is_integer() const { return gguf_type_is_integer(type); }
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Item k of a numeric/bool array (k < count), converted; throws kBadFile on the wrong kind.
  int64_t int_at(uint64_t k) const;     // integer items (uint64 above INT64_MAX refused)
  double float_at(uint64_t k) const;    // float or integer items
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;  // raw type id from the file
  DType dtype = DType::kF32;
  Shape shape;             // row-major: shape[ndim-1] == ne[0]
  uint64_t offset = 0;     // relative to the data section
  uint64_t nbytes = 0;     // shape x dtype
};

// Maps a ggml tensor type id to our DType; returns false for types we do not know/support.
bool ggml_type_to_dtype(uint32_t ggml_type, DType* out);

class GgufFile {
 public:
  // Maps and parses `path`. Throws Error(kIo) when it cannot be read, kBadFile when malformed.
  static GgufFile open(const std::string& path);
  // Parses bytes that the caller keeps alive (fuzzing, tests). `source` names them in errors.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& source);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  uint64_t file_size() const { return size_; }

  // --- metadata -------------------------------------------------------------------------------
  const std::vector<std::string>& keys() const { return keys_; }  // in file order
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  const GgufValue& get(std::string_view key) const;   // throws kBadFile when absent
  // Typed getters throw kBadFile (naming file and key) when absent or of another type. get_int
  // accepts any integer type (and refuses uint64 values above INT64_MAX); get_float accepts floats
  // and integers.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  // Variants that return `fallback` when the key is absent (but still throw on a wrong type).
  std::string get_string(std::string_view key, const std::string& fallback) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  // Arrays: throw kBadFile when absent, not an array, or with items of another type.
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;

  // --- tensors ----------------------------------------------------------------------------------
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // in file order
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Pointer to the tensor's first byte inside the mapped file (validated to hold nbytes).
  const uint8_t* tensor_data(const GgufTensorInfo& t) const { return base_ + data_offset_ + t.offset; }

 private:
  GgufFile() = default;
  void parse_all();
  void parse_unchecked();

  std::unique_ptr<MappedFile> map_;  // owns the bytes when opened from a path
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string source_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace nanoflow
