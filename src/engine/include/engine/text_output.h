// Text of one choice as it streams: stop strings (also split across tokens) are found and cut
// off with everything after them; text that might still turn into a stop string is held back;
// emitted text never ends inside a UTF-8 character.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "engine/sequence.h"

namespace nanoflow::engine {

// Appends `piece` (final text from the detokenizer) and returns the text that became safe to
// emit. When `check_stops` and a stop string occurs, *stopped is set and the text up to (not
// including) the earliest stop string is returned; nothing may be pushed afterwards.
std::string text_push(TextState& t, std::string_view piece, const std::vector<std::string>& stops,
                      bool check_stops, bool* stopped);
// At the end of the choice (not by a stop string): everything held back, including the
// detokenizer's remainder.
std::string text_finish(TextState& t);

}  // namespace nanoflow::engine
