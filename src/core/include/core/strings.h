// Small string helpers for command-line values.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace nanoflow {

// Every `sep`-separated item of `text`, empty ones included ("a,,b" -> a, "", b; "" -> one empty
// item), so that a parser can refuse them.
inline std::vector<std::string> split_all(std::string_view text, char sep) {
  std::vector<std::string> items;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(sep, begin);
    items.emplace_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return items;
    begin = end + 1;
  }
}

}  // namespace nanoflow
