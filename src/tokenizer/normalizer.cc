#include "normalizer.h"

#ifdef NF_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nanoflow::tok {
namespace {

void flatten(const nlohmann::json& j, Normalizer* out) {
  if (j.is_null()) return;
  NF_CHECK_FILE(j.is_object() && j.contains("type") && j["type"].is_string()) << "normalizer without a type";
  const std::string type = j["type"];
  if (type == "Sequence") {
    NF_CHECK_FILE(j.contains("normalizers") && j["normalizers"].is_array()) << "Sequence normalizer without a list";
    for (const auto& n : j["normalizers"]) flatten(n, out);
  } else if (type == "NFC") {
    out->add({NormalizerStep::Kind::kNfc, {}, {}, nullptr});
  } else if (type == "Prepend") {
    NF_CHECK_FILE(j.contains("prepend") && j["prepend"].is_string()) << "Prepend normalizer without a string";
    out->add({NormalizerStep::Kind::kPrepend, j["prepend"].get<std::string>(), {}, nullptr});
  } else if (type == "Replace") {
    NF_CHECK_FILE(j.contains("pattern") && j["pattern"].is_object() && j.contains("content") &&
                  j["content"].is_string())
        << "Replace normalizer needs a pattern and a content";
    NormalizerStep s{NormalizerStep::Kind::kReplace, j["content"].get<std::string>(), {}, nullptr};
    const auto& p = j["pattern"];
    if (p.contains("String") && p["String"].is_string()) {
      s.pattern = p["String"].get<std::string>();
      NF_CHECK_FILE(!s.pattern.empty()) << "Replace normalizer with an empty pattern";
    } else if (p.contains("Regex") && p["Regex"].is_string()) {
      s.regex = std::make_shared<Regex>(p["Regex"].get<std::string>());
    } else {
      NF_THROW(kBadFile) << "Replace normalizer pattern must be {String} or {Regex}";
    }
    out->add(std::move(s));
  } else {
    NF_THROW(kUnsupported) << "normalizer type '" << type << "' is not supported";
  }
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j) {
  Normalizer n;
  flatten(j, &n);
  return n;
}

void nfc_in_place(std::string& s) {
  bool ascii = true;
  for (char c : s) ascii &= static_cast<uint8_t>(c) < 0x80;
  if (ascii) return;
#ifndef NF_HAVE_ICU
  NF_THROW(kUnsupported) << "NFC normalization of non-ASCII text needs ICU (this build has none)";
#else
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
  NF_CHECK(U_SUCCESS(err)) << "ICU NFC unavailable: " << u_errorName(err);
  icu::StringPiece in(s.data(), static_cast<int32_t>(s.size()));
  if (nfc->isNormalizedUTF8(in, err) && U_SUCCESS(err)) return;
  err = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(s.size()));
  nfc->normalizeUTF8(0, in, sink, nullptr, err);
  NF_CHECK(U_SUCCESS(err)) << "ICU NFC failed: " << u_errorName(err);
  s = std::move(out);
#endif
}

void Normalizer::apply(std::string& s) const {
  for (const auto& st : steps_) {
    switch (st.kind) {
      case NormalizerStep::Kind::kNfc:
        nfc_in_place(s);
        break;
      case NormalizerStep::Kind::kPrepend:
        if (!s.empty()) s.insert(0, st.text);  // HF prepends only to non-empty text
        break;
      case NormalizerStep::Kind::kReplace: {
        std::string out;
        out.reserve(s.size() + s.size() / 4);
        if (st.regex) {
          std::vector<std::pair<size_t, size_t>> m;
          st.regex->find_all(s, &m);
          size_t last = 0;
          for (auto [b, e] : m) {
            out.append(s, last, b - last).append(st.text);
            last = e;
          }
          out.append(s, last, std::string::npos);
        } else {
          size_t last = 0;
          for (size_t p = s.find(st.pattern); p != std::string::npos; p = s.find(st.pattern, last)) {
            out.append(s, last, p - last).append(st.text);
            last = p + st.pattern.size();
          }
          out.append(s, last, std::string::npos);
        }
        s = std::move(out);
        break;
      }
    }
  }
}

}  // namespace nanoflow::tok
