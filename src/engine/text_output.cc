#include "engine/text_output.h"

#include <algorithm>

namespace nanoflow::engine {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Moves `pos` back to the start of the UTF-8 character it falls in (never before `floor`).
size_t char_boundary(const std::string& s, size_t pos, size_t floor) {
  while (pos > floor && pos < s.size() && is_continuation(s[pos])) --pos;
  return pos;
}

}  // namespace

std::string text_push(TextState& t, std::string_view piece, const std::vector<std::string>& stops,
                      bool check_stops, bool* stopped) {
  *stopped = false;
  const size_t old_len = t.text.size();
  t.text.append(piece);
  if (check_stops && !stops.empty()) {
    // A new occurrence must end in the new piece; held-back text guarantees it starts at or after
    // t.emitted, so only [max(emitted, old_len - longest + 1), end) needs searching.
    const size_t from = std::max(t.emitted, old_len >= t.max_stop_len ? old_len - t.max_stop_len + 1 : 0);
    size_t best = std::string::npos;
    for (const auto& s : stops) {
      if (s.empty()) continue;
      const size_t p = t.text.find(s, from);
      if (p != std::string::npos) best = std::min(best, p);
    }
    if (best != std::string::npos) {
      *stopped = true;
      std::string out = t.text.substr(t.emitted, best - t.emitted);
      t.text.resize(best);
      t.emitted = best;
      return out;
    }
  }
  // Hold back what could be the start of a stop string.
  const size_t hold = stops.empty() ? 0 : t.max_stop_len - 1;
  size_t end = t.text.size() > hold ? t.text.size() - hold : 0;
  end = std::max(end, t.emitted);
  end = char_boundary(t.text, end, t.emitted);
  std::string out = t.text.substr(t.emitted, end - t.emitted);
  t.emitted = end;
  return out;
}

std::string text_finish(TextState& t) {
  if (t.detok) t.text += t.detok->flush();
  std::string out = t.text.substr(t.emitted);
  t.emitted = t.text.size();
  return out;
}

}  // namespace nanoflow::engine
