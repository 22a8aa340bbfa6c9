#include "loader/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/checked.h"
#include "byte_reader.h"
#include "json_strict.h"

namespace nanoflow {
namespace {

using json = nlohmann::json;

uint64_t offset_value(const json& v, const std::string& source, const std::string& name) {
  if (!v.is_number_unsigned())
    NF_THROW(kBadFile) << source << ": tensor '" << name << "' has a data offset that is not a non-negative integer";
  return v.get<uint64_t>();
}

}  // namespace

bool safetensors_dtype(std::string_view n, DType* out) {
  static constexpr std::pair<std::string_view, DType> kNames[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
      {"I8", DType::kI8},   {"I16", DType::kI16}, {"I32", DType::kI32},   {"I64", DType::kI64},
      {"U8", DType::kU8},   {"BOOL", DType::kBool},
  };
  for (const auto& [name, t] : kNames)
    if (name == n) {
      *out = t;
      return true;
    }
  return false;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.map_ = std::make_unique<MappedFile>(path);
  f.base_ = f.map_->data();
  f.size_ = f.map_->size();
  f.source_ = path;
  f.parse_all();
  return f;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& source) {
  SafetensorsFile f;
  f.base_ = data;
  f.size_ = size;
  f.source_ = source;
  f.parse_all();
  return f;
}

void SafetensorsFile::parse_all() {
  detail::parse_naming_file(source_, [this] { parse_unchecked(); });
}

void SafetensorsFile::parse_unchecked() {
  if (size_ < 8) NF_THROW(kBadFile) << source_ << ": " << size_ << " bytes is too short for a safetensors file";
  uint64_t n;
  std::memcpy(&n, base_, 8);
  if (n > kMaxHeaderBytes)
    NF_THROW(kBadFile) << source_ << ": header length " << n << " is over the limit of " << kMaxHeaderBytes << " bytes";
  if (n > size_ - 8)
    NF_THROW(kBadFile) << source_ << ": header length " << n << " runs past the end of the file (" << size_ << " bytes)";
  data_offset_ = 8 + n;
  const std::string_view text(reinterpret_cast<const char*>(base_ + 8), static_cast<size_t>(n));
  const json header = detail::parse_json_strict(text, source_ + " (header)");
  if (!header.is_object()) NF_THROW(kBadFile) << source_ << ": header is not a JSON object";

  tensors_.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) NF_THROW(kBadFile) << source_ << ": __metadata__ is not an object";
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) NF_THROW(kBadFile) << source_ << ": __metadata__ value of '" << k << "' is not a string";
        metadata_.emplace(k, v.get<std::string>());
      }
      continue;
    }
    if (name.empty()) NF_THROW(kBadFile) << source_ << ": a tensor has an empty name";
    if (!entry.is_object()) NF_THROW(kBadFile) << source_ << ": entry of tensor '" << name << "' is not an object";
    SafetensorsTensor t;
    t.name = name;
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' has no dtype string";
    const std::string dts = dt->get<std::string>();
    if (!safetensors_dtype(dts, &t.dtype))
      NF_THROW(kUnsupported) << source_ << ": tensor '" << name << "' has unsupported dtype " << dts;
    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' has no shape array";
    if (sh->size() > static_cast<size_t>(Shape::kMaxDims))
      NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' has " << sh->size() << " dimensions (max " << Shape::kMaxDims << ")";
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' has an invalid dimension " << d.dump();
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2)
      NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' needs data_offsets [begin, end]";
    t.begin = offset_value((*off)[0], source_, name);
    t.end = offset_value((*off)[1], source_, name);
    if (t.end < t.begin)
      NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' ends (" << t.end << ") before it begins (" << t.begin << ")";
    uint64_t bytes;
    try {
      bytes = dtype_bytes(t.dtype, static_cast<uint64_t>(t.shape.numel()));
    } catch (const Error& e) {
      NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' " << t.shape.str() << ": " << e.what();
    }
    if (bytes != t.end - t.begin)
      NF_THROW(kBadFile) << source_ << ": tensor '" << name << "' " << dts << " " << t.shape.str() << " needs " << bytes
                         << " bytes but its data_offsets [" << t.begin << ", " << t.end << ") hold " << (t.end - t.begin);
    tensors_.push_back(std::move(t));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the previous ended.
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_bytes = size_ - data_offset_;
  uint64_t expect = 0;
  for (const auto& t : tensors_) {
    if (t.begin < expect) NF_THROW(kBadFile) << source_ << ": tensor '" << t.name << "' overlaps the tensor before it (offset " << t.begin << " < " << expect << ")";
    if (t.begin > expect) NF_THROW(kBadFile) << source_ << ": gap of " << (t.begin - expect) << " bytes before tensor '" << t.name << "' (offset " << t.begin << ")";
    if (t.end > data_bytes)
      NF_THROW(kBadFile) << source_ << ": tensor '" << t.name << "' data [" << t.begin << ", " << t.end << ") runs past the end of the file ("
                         << data_bytes << " data bytes); truncated?";
    expect = t.end;
  }
  if (expect != data_bytes)
    NF_THROW(kBadFile) << source_ << ": " << (data_bytes - expect) << " bytes after the last tensor are not described by the header";
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::string> SafetensorsIndex::shards() const {
  std::set<std::string> s;
  for (const auto& [name, file] : weight_map) s.insert(file);
  return {s.begin(), s.end()};
}

SafetensorsIndex parse_safetensors_index(const std::string& json_text, const std::string& source) {
  const json j = detail::parse_json_strict(json_text, source);
  if (!j.is_object()) NF_THROW(kBadFile) << source << ": not a JSON object";
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object() || wm->empty())
    NF_THROW(kBadFile) << source << ": missing or empty \"weight_map\" object";
  SafetensorsIndex idx;
  for (const auto& [name, file] : wm->items()) {
    if (!file.is_string()) NF_THROW(kBadFile) << source << ": shard of '" << name << "' is not a string";
    std::string f = file.get<std::string>();
    // A shard is a plain file name in the model folder: nothing that could leave it.
    if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
        f.find('\0') != std::string::npos)
      NF_THROW(kBadFile) << source << ": shard name \"" << f << "\" of '" << name << "' is not a plain file name";
    idx.weight_map.emplace(name, std::move(f));
  }
  return idx;
}

}  // namespace nanoflow
