#include "loader/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "byte_reader.h"
#include "core/checked.h"

namespace nanoflow {
namespace {

using detail::ByteReader;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxKeyBytes = 65535;
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused (stack safety)

// Smallest encoded size of one value of `t`, used to cap counts by the bytes left.
uint64_t min_encoded_bytes(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;   // the length
    case GgufType::kArray: return 12;   // elem type + count
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

std::string read_string(ByteReader& r, const char* what, uint64_t max_len = UINT64_MAX) {
  const uint64_t n = r.read<uint64_t>(what);
  if (n > max_len) NF_THROW(kBadFile) << r.source() << ": " << what << " is " << n << " bytes long (limit " << max_len << ")";
  return std::string(r.bytes(n, what));
}

void read_value(ByteReader& r, GgufType type, GgufValue& v, int depth, const std::string& key) {
  v.type = type;
  switch (type) {
    case GgufType::kUint8: v.u = r.read<uint8_t>("value"); break;
    case GgufType::kInt8: v.i = r.read<int8_t>("value"); break;
    case GgufType::kUint16: v.u = r.read<uint16_t>("value"); break;
    case GgufType::kInt16: v.i = r.read<int16_t>("value"); break;
    case GgufType::kUint32: v.u = r.read<uint32_t>("value"); break;
    case GgufType::kInt32: v.i = r.read<int32_t>("value"); break;
    case GgufType::kUint64: v.u = r.read<uint64_t>("value"); break;
    case GgufType::kInt64: v.i = r.read<int64_t>("value"); break;
    case GgufType::kFloat32: v.f = r.read<float>("value"); break;
    case GgufType::kFloat64: v.f = r.read<double>("value"); break;
    case GgufType::kBool: {
      const uint8_t b = r.read<uint8_t>("bool value");
      if (b > 1) NF_THROW(kBadFile) << r.source() << ": bool value " << int(b) << " of key '" << key << "' is not 0 or 1";
      v.b = b != 0;
      break;
    }
    case GgufType::kString: v.s = read_string(r, "string value"); break;
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth)
        NF_THROW(kBadFile) << r.source() << ": arrays nested deeper than " << kMaxArrayDepth << " in key '" << key << "'";
      const uint32_t et = r.read<uint32_t>("array type");
      if (!valid_type(et)) NF_THROW(kBadFile) << r.source() << ": unknown array element type " << et << " in key '" << key << "'";
      v.elem_type = static_cast<GgufType>(et);
      const uint64_t n = r.read<uint64_t>("array length");
      // Each item needs at least min_encoded_bytes: a count the file cannot hold is a lie.
      if (n > r.remaining() / min_encoded_bytes(v.elem_type))
        NF_THROW(kBadFile) << r.source() << ": array '" << key << "' claims " << n << " items of "
                           << gguf_type_name(v.elem_type) << " but only " << r.remaining() << " bytes are left";
      v.count = n;
      if (const uint32_t sz = gguf_scalar_bytes(v.elem_type)) {
        v.raw = r.bytes(n * sz, "array items");  // n * sz <= remaining, checked above
        if (v.elem_type == GgufType::kBool)
          for (char c : v.raw)
            if (static_cast<uint8_t>(c) > 1) NF_THROW(kBadFile) << r.source() << ": bool array '" << key << "' holds a value other than 0/1";
        return;
      }
      v.items.resize(static_cast<size_t>(n));
      for (auto& item : v.items) read_value(r, v.elem_type, item, depth + 1, key);
      return;
    }
  }
  // Mirror integers so that both views are usable when the value fits.
  switch (type) {
    case GgufType::kUint8: case GgufType::kUint16: case GgufType::kUint32: case GgufType::kUint64:
      v.i = v.u <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v.u) : 0;
      break;
    case GgufType::kInt8: case GgufType::kInt16: case GgufType::kInt32: case GgufType::kInt64:
      v.u = v.i >= 0 ? static_cast<uint64_t>(v.i) : 0;
      break;
    default: break;
  }
}

[[noreturn]] void wrong_type(const std::string& source, std::string_view key, const GgufValue& v, const char* want) {
  NF_THROW(kBadFile) << source << ": metadata key '" << key << "' is " << gguf_type_name(v.type)
                     << (v.type == GgufType::kArray ? std::string(" of ") + std::string(gguf_type_name(v.elem_type)) : "")
                     << ", expected " << want;
}

int64_t int_of(const std::string& source, std::string_view key, const GgufValue& v) {
  if (!v.is_integer()) wrong_type(source, key, v, "an integer");
  if (v.type == GgufType::kUint64 && v.u > static_cast<uint64_t>(INT64_MAX))
    NF_THROW(kBadFile) << source << ": metadata key '" << key << "' value " << v.u << " is out of range";
  return v.i;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                                "bool", "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : std::string_view("unknown");
}

bool gguf_type_is_integer(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

uint32_t gguf_scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::kString: case GgufType::kArray: return 0;
    default: return static_cast<uint32_t>(min_encoded_bytes(t));
  }
}

namespace {
template <class T>
T load_at(std::string_view raw, uint64_t k) {
  T v;
  std::memcpy(&v, raw.data() + k * sizeof(T), sizeof(T));
  return v;
}
}  // namespace

int64_t GgufValue::int_at(uint64_t k) const {
  NF_CHECK_FILE(type == GgufType::kArray && gguf_type_is_integer(elem_type) && !raw.empty() && k < count)
      << "not an integer array item";
  switch (elem_type) {
    case GgufType::kUint8: return load_at<uint8_t>(raw, k);
    case GgufType::kInt8: return load_at<int8_t>(raw, k);
    case GgufType::kUint16: return load_at<uint16_t>(raw, k);
    case GgufType::kInt16: return load_at<int16_t>(raw, k);
    case GgufType::kUint32: return load_at<uint32_t>(raw, k);
    case GgufType::kInt32: return load_at<int32_t>(raw, k);
    case GgufType::kInt64: return load_at<int64_t>(raw, k);
    case GgufType::kUint64: {
      const uint64_t u = load_at<uint64_t>(raw, k);
      if (u > static_cast<uint64_t>(INT64_MAX)) NF_THROW(kBadFile) << "uint64 array item " << u << " is out of range";
      return static_cast<int64_t>(u);
    }
    default: break;
  }
  NF_THROW(kBadFile) << "not an integer array";
}

double GgufValue::float_at(uint64_t k) const {
  if (type == GgufType::kArray && elem_type == GgufType::kFloat32 && k < count) return load_at<float>(raw, k);
  if (type == GgufType::kArray && elem_type == GgufType::kFloat64 && k < count) return load_at<double>(raw, k);
  return static_cast<double>(int_at(k));
}

bool ggml_type_to_dtype(uint32_t t, DType* out) {
  // ggml type ids (ggml.h `enum ggml_type`); 4 and 5 were removed Q4_2/Q4_3, 16..23 and 29 are the
  // IQ types, which we do not dequantize.
  switch (t) {
    case 0: *out = DType::kF32; return true;
    case 1: *out = DType::kF16; return true;
    case 2: *out = DType::kQ4_0; return true;
    case 3: *out = DType::kQ4_1; return true;
    case 6: *out = DType::kQ5_0; return true;
    case 7: *out = DType::kQ5_1; return true;
    case 8: *out = DType::kQ8_0; return true;
    case 9: *out = DType::kQ8_1; return true;
    case 10: *out = DType::kQ2_K; return true;
    case 11: *out = DType::kQ3_K; return true;
    case 12: *out = DType::kQ4_K; return true;
    case 13: *out = DType::kQ5_K; return true;
    case 14: *out = DType::kQ6_K; return true;
    case 15: *out = DType::kQ8_K; return true;
    case 24: *out = DType::kI8; return true;
    case 25: *out = DType::kI16; return true;
    case 26: *out = DType::kI32; return true;
    case 27: *out = DType::kI64; return true;
    case 28: *out = DType::kF64; return true;
    case 30: *out = DType::kBF16; return true;
    default: return false;
  }
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  GgufFile f;
  f.map_ = std::make_unique<MappedFile>(path);
  f.base_ = f.map_->data();
  f.size_ = f.map_->size();
  f.source_ = path;
  f.parse_all();
  return f;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& source) {
  GgufFile f;
  f.base_ = data;
  f.size_ = size;
  f.source_ = source;
  f.parse_all();
  return f;
}

void GgufFile::parse_all() {
  detail::parse_naming_file(source_, [this] { parse_unchecked(); });
}

void GgufFile::parse_unchecked() {
  ByteReader r(base_, size_, source_);
  const uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) NF_THROW(kBadFile) << source_ << ": not a GGUF file (bad magic)";
  version_ = r.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    NF_THROW(kBadFile) << source_ << ": unsupported GGUF version " << version_ << " (2 and 3 are supported)";
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  // A kv needs >= 8 (key length) + 4 (type) + 1 bytes; a tensor info >= 8 + 4 + 4 + 8.
  if (n_kv > r.remaining() / 13)
    NF_THROW(kBadFile) << source_ << ": metadata count " << n_kv << " cannot fit in " << r.remaining() << " bytes";
  if (n_tensors > r.remaining() / 24)
    NF_THROW(kBadFile) << source_ << ": tensor count " << n_tensors << " cannot fit in " << r.remaining() << " bytes";

  keys_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = read_string(r, "metadata key", kMaxKeyBytes);
    if (key.empty()) NF_THROW(kBadFile) << source_ << ": empty metadata key (#" << k << ")";
    const uint32_t type = r.read<uint32_t>("value type");
    if (!valid_type(type)) NF_THROW(kBadFile) << source_ << ": unknown value type " << type << " of key '" << key << "'";
    GgufValue v;
    read_value(r, static_cast<GgufType>(type), v, 0, key);
    if (kv_.count(key)) NF_THROW(kBadFile) << source_ << ": duplicate metadata key '" << key << "'";
    keys_.push_back(key);
    kv_.emplace(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::kUint32) wrong_type(source_, "general.alignment", *a, "uint32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      NF_THROW(kBadFile) << source_ << ": general.alignment " << a->u << " is not a power of two";
    alignment_ = a->u;
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo info;
    info.name = read_string(r, "tensor name", kMaxKeyBytes);
    if (info.name.empty()) NF_THROW(kBadFile) << source_ << ": tensor #" << t << " has an empty name";
    const uint32_t n_dims = r.read<uint32_t>("tensor dim count");
    if (n_dims == 0 || n_dims > kMaxDims)
      NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' has " << n_dims << " dimensions (1.." << kMaxDims << ")";
    uint64_t ne[kMaxDims];
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<uint64_t>("tensor dim");
      if (ne[d] == 0 || ne[d] > static_cast<uint64_t>(INT64_MAX))
        NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' has invalid dimension "
                           << static_cast<int64_t>(ne[d]) << " (ne[" << d << "])";
    }
    for (uint32_t d = n_dims; d-- > 0;) info.shape.push_back(static_cast<int64_t>(ne[d]));
    info.ggml_type = r.read<uint32_t>("tensor type");
    if (!ggml_type_to_dtype(info.ggml_type, &info.dtype))
      NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' has unknown or unsupported type " << info.ggml_type;
    info.offset = r.read<uint64_t>("tensor offset");
    const DTypeInfo& dt = dtype_info(info.dtype);
    if (ne[0] % dt.block_elems != 0)
      NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' row of " << ne[0] << " values is not a whole number of "
                         << dt.name << " blocks (" << dt.block_elems << ")";
    try {
      info.nbytes = dtype_bytes(info.dtype, static_cast<uint64_t>(info.shape.numel()));
    } catch (const Error& e) {
      NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' " << info.shape.str() << ": " << e.what();
    }
    if (info.offset % alignment_ != 0)
      NF_THROW(kBadFile) << source_ << ": tensor '" << info.name << "' data offset " << info.offset
                         << " is not a multiple of the alignment " << alignment_;
    if (tensor_index_.count(info.name)) NF_THROW(kBadFile) << source_ << ": duplicate tensor name '" << info.name << "'";
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t pos = r.pos();
  data_offset_ = checked_add(pos, (alignment_ - pos % alignment_) % alignment_, "data offset");
  if (!tensors_.empty() && data_offset_ > size_)
    NF_THROW(kBadFile) << source_ << ": data section at " << data_offset_ << " is past the end of the file (" << size_ << " bytes)";
  const uint64_t data_bytes = data_offset_ <= size_ ? size_ - data_offset_ : 0;

  // Every tensor inside the data section, none overlapping another.
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const auto& t : tensors_) {
    const uint64_t end = checked_add(t.offset, t.nbytes, "tensor end");
    if (end > data_bytes)
      NF_THROW(kBadFile) << source_ << ": tensor '" << t.name << "' data [" << t.offset << ", " << end
                         << ") runs past the end of the data section (" << data_bytes << " bytes); file truncated?";
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset)
      NF_THROW(kBadFile) << source_ << ": tensors '" << prev->name << "' and '" << by_offset[i]->name << "' overlap";
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) NF_THROW(kBadFile) << source_ << ": missing metadata key '" << key << "'";
  return *v;
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::kString) wrong_type(source_, key, v, "a string");
  return v.s;
}
int64_t GgufFile::get_int(std::string_view key) const { return int_of(source_, key, get(key)); }
double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.is_float()) return v.f;
  return static_cast<double>(int_of(source_, key, v));
}
bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::kBool) wrong_type(source_, key, v, "a bool");
  return v.b;
}
std::string GgufFile::get_string(std::string_view key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }
double GgufFile::get_float(std::string_view key, double fallback) const { return has(key) ? get_float(key) : fallback; }
bool GgufFile::get_bool(std::string_view key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::kArray || v.elem_type != GgufType::kString) wrong_type(source_, key, v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(v.items.size());
  for (const auto& it : v.items) out.push_back(it.s);
  return out;
}
std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::kArray || !gguf_type_is_integer(v.elem_type)) wrong_type(source_, key, v, "an array of integers");
  std::vector<int64_t> out(static_cast<size_t>(v.count));
  try {
    for (uint64_t k = 0; k < v.count; ++k) out[k] = v.int_at(k);
  } catch (const Error& e) {
    NF_THROW(kBadFile) << source_ << ": metadata key '" << key << "': " << e.what();
  }
  return out;
}
std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::kArray || (v.elem_type != GgufType::kFloat32 && v.elem_type != GgufType::kFloat64))
    wrong_type(source_, key, v, "an array of floats");
  std::vector<float> out(static_cast<size_t>(v.count));
  for (uint64_t k = 0; k < v.count; ++k) out[k] = static_cast<float>(v.float_at(k));
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace nanoflow
