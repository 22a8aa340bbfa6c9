#include "server/auth.h"

#include <cstdint>

namespace nanoflow {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the expected key's length whatever the input is; a length mismatch is folded into the
  // result instead of returning early.
  const size_t n = b.size();
  volatile uint8_t diff = a.size() == n ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    uint8_t x = i < a.size() ? static_cast<uint8_t>(a[i]) : 0;
    diff = diff | static_cast<uint8_t>(x ^ static_cast<uint8_t>(b[i]));
  }
  return diff == 0;
}

bool authorized(std::string_view header, std::string_view api_key) {
  constexpr std::string_view kScheme = "bearer ";
  bool scheme_ok = header.size() > kScheme.size();
  for (size_t i = 0; scheme_ok && i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    scheme_ok = c == kScheme[i];
  }
  std::string_view key = scheme_ok ? header.substr(kScheme.size()) : std::string_view{};
  bool key_ok = constant_time_equal(key, api_key);
  return scheme_ok && key_ok;
}

}  // namespace nanoflow
