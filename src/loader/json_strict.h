// JSON parsing for untrusted model files (private to the loader): nlohmann's parser (which already
// refuses ill-formed UTF-8 inside strings), plus a refusal of duplicate keys in any object, which
// nlohmann would otherwise resolve silently by keeping the last one.
#pragma once
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace nanoflow::detail {

inline nlohmann::json parse_json_strict(std::string_view text, const std::string& source) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> open_objects;  // keys seen, one set per enclosing object
  std::string duplicate;
  auto cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end: if (!open_objects.empty()) open_objects.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          return false;  // stops building this value; reported below
        }
        break;
      default: break;
    }
    return duplicate.empty();
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    NF_THROW(kBadFile) << source << ": not valid JSON: " << e.what();
  }
  if (!duplicate.empty()) NF_THROW(kBadFile) << source << ": duplicate key \"" << duplicate << "\"";
  return j;
}

}  // namespace nanoflow::detail
