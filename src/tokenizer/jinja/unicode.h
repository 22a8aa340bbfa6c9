// UTF-8 helpers for Python's code-point string semantics (len, slicing, str.strip/split/upper).
// Invalid UTF-8 never throws here: each byte of a malformed sequence counts as one unit, so
// cutting and re-joining keeps the original bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nanoflow::jinja {

// Code point at byte offset i and its length in bytes (1 for a malformed byte, returned as-is).
uint32_t utf8_decode(std::string_view s, size_t i, size_t* len);
void utf8_append(std::string& out, uint32_t cp);
// Byte offsets of every code point start, plus s.size() at the end (size = length + 1).
std::vector<size_t> cp_offsets(std::string_view s);
// Start of the code point (or malformed byte) that ends at byte offset end > 0.
size_t cp_start_before(std::string_view s, size_t end);
size_t cp_length(std::string_view s);
std::vector<uint32_t> to_code_points(std::string_view s);

// Python str.isspace() for one code point (the set str.strip()/split() use).
bool py_isspace(uint32_t cp);
// Python str.splitlines() line boundaries (\n \r \v \f \x1c-\x1e \x85 \u2028 \u2029).
bool py_is_linebreak(uint32_t cp);

enum class StripSide { kBoth, kLeft, kRight };
// Python str.strip/lstrip/rstrip: chars = nullopt strips whitespace, else any of those code points.
std::string py_strip(std::string_view s, StripSide side, const std::optional<std::string>& chars);
// Python str.split(sep=None / sep, maxsplit) and rsplit. An empty sep throws (Python's ValueError).
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
std::vector<std::string> py_splitlines(std::string_view s);
// Case mapping per code point (C.UTF-8 locale tables: Unicode simple case mapping; Python uses
// full mapping, which differs for a few characters such as 'ß'.upper() == 'SS').
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);

}  // namespace nanoflow::jinja
