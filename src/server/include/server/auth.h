// API-key check: "Authorization: Bearer <key>", compared in constant time (no early exit on the
// first differing byte, and the time does not depend on where the keys differ).
#pragma once
#include <string>
#include <string_view>

namespace nanoflow {

bool constant_time_equal(std::string_view a, std::string_view b);
// `header` is the Authorization header value ("" when absent). The scheme is case-insensitive
// (RFC 9110); the key is compared exactly.
bool authorized(std::string_view header, std::string_view api_key);

}  // namespace nanoflow
