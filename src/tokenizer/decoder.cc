#include "decoder.h"

#include <nlohmann/json.hpp>

#include "byte_level.h"
#include "core/error.h"
#include "utf8.h"

namespace nanoflow::tok {
namespace {

void flatten(const nlohmann::json& j, Decoder* out) {
  NF_CHECK_FILE(j.is_object() && j.contains("type") && j["type"].is_string()) << "decoder without a type";
  const std::string type = j["type"];
  if (type == "Sequence") {
    NF_CHECK_FILE(j.contains("decoders") && j["decoders"].is_array()) << "Sequence decoder without a list";
    for (const auto& d : j["decoders"]) flatten(d, out);
  } else if (type == "ByteLevel") {
    out->add({DecoderStep::Kind::kByteLevel, {}, {}, 0, 0});
  } else if (type == "ByteFallback") {
    out->add({DecoderStep::Kind::kByteFallback, {}, {}, 0, 0});
  } else if (type == "Fuse") {
    out->add({DecoderStep::Kind::kFuse, {}, {}, 0, 0});
  } else if (type == "Replace") {
    NF_CHECK_FILE(j.contains("pattern") && j["pattern"].is_object() && j["pattern"].contains("String") &&
                  j["pattern"]["String"].is_string() && j.contains("content") && j["content"].is_string())
        << "Replace decoder needs a String pattern and a content (regex patterns are not supported)";
    DecoderStep s{DecoderStep::Kind::kReplace, j["pattern"]["String"], j["content"], 0, 0};
    NF_CHECK_FILE(!s.pattern.empty()) << "Replace decoder with an empty pattern";
    out->add(std::move(s));
  } else if (type == "Strip") {
    NF_CHECK_FILE(j.contains("content") && j["content"].is_string()) << "Strip decoder without content";
    std::string c = j["content"];
    NF_CHECK_FILE(!c.empty() && utf8_seq_len(static_cast<uint8_t>(c[0])) == c.size()) << "Strip content must be one character";
    int start = j.value("start", 0), stop = j.value("stop", 0);
    NF_CHECK_FILE(start >= 0 && stop >= 0 && start < 1024 && stop < 1024) << "Strip start/stop out of range";
    out->add({DecoderStep::Kind::kStrip, {}, c, start, stop});
  } else {
    NF_THROW(kUnsupported) << "decoder type '" << type << "' is not supported";
  }
}

// "<0xNN>" -> NN, else -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  int h = hex(t[3]), l = hex(t[4]);
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t last = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, last)) {
    out.append(s, last, p - last).append(to);
    last = p + from.size();
  }
  if (last == 0) return;
  out.append(s, last, std::string::npos);
  s = std::move(out);
}

}  // namespace

Decoder Decoder::from_json(const nlohmann::json& j) {
  Decoder d;
  if (j.is_null()) return d;
  d.present_ = true;
  flatten(j, &d);
  return d;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (!present_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  for (const auto& st : steps_) {
    switch (st.kind) {
      case DecoderStep::Kind::kByteLevel: {
        // All tokens become one string: bytes from the alphabet (a token with characters outside
        // it contributes its own UTF-8), then lossy UTF-8 repair.
        std::string bytes;
        for (const auto& t : tokens) {
          if (auto b = byte_level_decode(t)) bytes += *b;
          else bytes += t;
        }
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case DecoderStep::Kind::kReplace:
        for (auto& t : tokens) replace_all(t, st.pattern, st.content);
        break;
      case DecoderStep::Kind::kByteFallback: {
        // Runs of <0xNN> tokens become their bytes if those form valid UTF-8, else one U+FFFD per
        // byte (HF's rule, unlike the lossy repair of ByteLevel).
        std::vector<std::string> out;
        std::string run;
        size_t run_len = 0;
        auto flush = [&]() {
          if (run_len == 0) return;
          if (utf8_is_valid(run)) {
            out.push_back(run);
          } else {
            std::string r;
            for (size_t k = 0; k < run_len; ++k) r += kReplacementChar;
            out.push_back(std::move(r));
          }
          run.clear();
          run_len = 0;
        };
        for (auto& t : tokens) {
          int b = parse_byte_token(t);
          if (b >= 0) {
            run.push_back(static_cast<char>(b));
            ++run_len;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case DecoderStep::Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecoderStep::Kind::kStrip:
        for (auto& t : tokens) {
          size_t b = 0, e = t.size();
          for (int k = 0; k < st.start && t.compare(b, st.content.size(), st.content) == 0 && b < e; ++k)
            b += st.content.size();
          for (int k = 0; k < st.stop && e >= b + st.content.size() &&
                          t.compare(e - st.content.size(), st.content.size(), st.content) == 0;
               ++k)
            e -= st.content.size();
          t = t.substr(b, e - b);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace nanoflow::tok
