// Tokenizer::from_hf_folder: tokenizer.json (+ tokenizer_config.json, chat_template.jinja).
//
// tokenizer.json fields used: model {type BPE, vocab, merges, byte_fallback, fuse_unk,
// ignore_merges, unk_token, dropout}, added_tokens, normalizer, pre_tokenizer, post_processor
// (TemplateProcessing / ByteLevel / Sequence), decoder. Every structural problem is an
// Error(kBadFile) naming the file; unsupported components are Error(kUnsupported).
#include <filesystem>

#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "byte_level.h"
#include "core/error.h"
#include "core/mmap.h"
#include "hf_loader.h"
#include "tokenizer_build.h"
#include "utf8.h"

namespace nanoflow {
namespace tok {
namespace {

using nlohmann::json;

// bos_token / eos_token in tokenizer_config.json: a string or an AddedToken object.
std::string token_string(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return {};
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

// Post-processor -> ids added around a single sequence.
void parse_post_processor(const json& j, const std::function<int32_t(const std::string&)>& id_of,
                          BpeTokenizerParts* p) {
  if (j.is_null()) return;
  NF_CHECK_FILE(j.is_object() && j.contains("type") && j["type"].is_string()) << "post_processor without a type";
  const std::string type = j["type"];
  if (type == "Sequence") {
    NF_CHECK_FILE(j.contains("processors") && j["processors"].is_array()) << "Sequence post_processor without a list";
    for (const auto& q : j["processors"]) parse_post_processor(q, id_of, p);
  } else if (type == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    NF_CHECK_FILE(j.contains("single") && j["single"].is_array()) << "TemplateProcessing without 'single'";
    const json& specials = j.value("special_tokens", json::object());
    bool seen_sequence = false;
    for (const auto& piece : j["single"]) {
      if (piece.contains("Sequence")) {
        NF_CHECK_FILE(!seen_sequence) << "TemplateProcessing 'single' with two sequences";
        seen_sequence = true;
        continue;
      }
      NF_CHECK_FILE(piece.contains("SpecialToken") && piece["SpecialToken"].contains("id"))
          << "TemplateProcessing piece is neither Sequence nor SpecialToken";
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      std::vector<int32_t> ids;
      if (specials.contains(name) && specials[name].contains("ids")) {
        for (const auto& id : specials[name]["ids"]) ids.push_back(id.get<int32_t>());
      } else {
        ids.push_back(id_of(name));
      }
      auto& dst = seen_sequence ? p->suffix_ids : p->prefix_ids;
      dst.insert(dst.end(), ids.begin(), ids.end());
    }
    NF_CHECK_FILE(seen_sequence) << "TemplateProcessing 'single' without the sequence";
  } else {
    NF_THROW(kUnsupported) << "post_processor type '" << type << "' is not supported";
  }
}

// tokenizer.json text -> everything but what tokenizer_config.json adds. `path` names it in errors.
BpeTokenizerParts parse_tokenizer_json(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    NF_THROW(kBadFile) << path << ": not valid JSON: " << e.what();
  }
  NF_CHECK_FILE(j.is_object() && j.contains("model") && j["model"].is_object()) << path << ": no model";
  const json& m = j["model"];
  const std::string type = m.value("type", std::string("BPE"));
  if (type != "BPE") NF_THROW(kUnsupported) << path << ": model type '" << type << "' is not supported (BPE only)";
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
    NF_THROW(kUnsupported) << path << ": BPE dropout is not supported";
  NF_CHECK_FILE(m.contains("vocab") && m["vocab"].is_object()) << path << ": model.vocab must be an object";
  NF_CHECK_FILE(m.contains("merges") && m["merges"].is_array()) << path << ": model.merges must be an array";

  VocabSource src;
  src.source = path;
  for (const auto& [k, v] : m["vocab"].items()) {
    NF_CHECK_FILE(v.is_number_integer()) << path << ": vocab id of '" << k << "' is not an integer";
    src.vocab.emplace_back(k, v.get<int64_t>());
  }
  for (const auto& mg : m["merges"]) {
    if (mg.is_string()) {
      const std::string s = mg;
      size_t sp = s.find(' ');
      NF_CHECK_FILE(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos)
          << path << ": merge '" << s << "' is not two tokens separated by one space";
      src.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      NF_CHECK_FILE(mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string())
          << path << ": a merge must be \"a b\" or [\"a\", \"b\"]";
      src.merges.emplace_back(mg[0].get<std::string>(), mg[1].get<std::string>());
    }
  }
  if (j.contains("added_tokens")) {
    NF_CHECK_FILE(j["added_tokens"].is_array()) << path << ": added_tokens must be an array";
    for (const auto& a : j["added_tokens"]) {
      NF_CHECK_FILE(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                    a["content"].is_string())
          << path << ": an added token needs an integer id and a content";
      AddedToken t;
      int64_t id = a["id"].get<int64_t>();
      NF_CHECK_FILE(id >= 0 && id < (int64_t{1} << 24)) << path << ": added token id " << id << " out of range";
      t.id = static_cast<int32_t>(id);
      t.content = a["content"].get<std::string>();
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.single_word = a.value("single_word", false);
      t.normalized = a.value("normalized", !t.special);
      src.added.push_back(std::move(t));
    }
  }
  BpeConfig cfg;
  cfg.byte_fallback = m.value("byte_fallback", false);
  cfg.fuse_unk = m.value("fuse_unk", false);
  cfg.ignore_merges = m.value("ignore_merges", false);
  if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string())
    cfg.continuing_subword_prefix = m["continuing_subword_prefix"];
  if (m.contains("end_of_word_suffix") && m["end_of_word_suffix"].is_string())
    cfg.end_of_word_suffix = m["end_of_word_suffix"];
  if (m.contains("unk_token") && m["unk_token"].is_string()) src.unk_token = m["unk_token"];

  BpeTokenizerParts parts;
  try {
    parts.normalizer = Normalizer::from_json(j.value("normalizer", json()));
    bool byte_level = false;
    parts.pre_tokenizer = PreTokenizer::from_json(j.value("pre_tokenizer", json()), &byte_level);
    parts.decoder = Decoder::from_json(j.value("decoder", json()));
    // A byte-level vocabulary is what the ByteLevel pre-tokenizer implies; some files only say so in
    // the decoder.
    for (const auto& st : parts.decoder.steps()) byte_level |= st.kind == DecoderStep::Kind::kByteLevel;
    cfg.byte_level = byte_level;
    build_vocab(std::move(src), cfg, &parts);
    parse_post_processor(j.value("post_processor", json()), [&](const std::string& name) {
      for (const auto& t : parts.added) if (t.content == name) return t.id;
      for (size_t i = 0; i < parts.id_to_token.size(); ++i) if (parts.id_to_token[i] == name) return static_cast<int32_t>(i);
      NF_THROW(kBadFile) << "post_processor names unknown token '" << name << "'";
    }, &parts);
    for (int32_t id : parts.prefix_ids) NF_CHECK_FILE(id >= 0 && id < static_cast<int32_t>(parts.id_to_token.size())) << "post_processor id " << id << " outside the vocabulary";
    for (int32_t id : parts.suffix_ids) NF_CHECK_FILE(id >= 0 && id < static_cast<int32_t>(parts.id_to_token.size())) << "post_processor id " << id << " outside the vocabulary";
  } catch (const Error& e) {
    if (std::string_view(e.what()).find(path) != std::string_view::npos) throw;
    throw Error(e.kind(), path + ": " + e.what());
  } catch (const json::exception& e) {
    NF_THROW(kBadFile) << path << ": " << e.what();
  }
  return parts;
}

std::unique_ptr<Tokenizer> load(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(path)) NF_THROW(kNotFound) << "no tokenizer.json in " << dir;
  BpeTokenizerParts parts = parse_tokenizer_json(read_text_file(path), path);

  // tokenizer_config.json: bos/eos strings and the chat template.
  const std::string cfg_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::exists(cfg_path)) {
    json c;
    try {
      c = json::parse(read_text_file(cfg_path, size_t{64} << 20));
    } catch (const json::exception& e) {
      NF_THROW(kBadFile) << cfg_path << ": not valid JSON: " << e.what();
    }
    NF_CHECK_FILE(c.is_object()) << cfg_path << ": not a JSON object";
    parts.bos_token = token_string(c, "bos_token");
    parts.eos_token = token_string(c, "eos_token");
    if (c.contains("chat_template")) {
      const json& ct = c["chat_template"];
      if (ct.is_string()) {
        parts.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{name, template}, ...]: the "default" one
        for (const auto& e : ct)
          if (e.is_object() && e.value("name", std::string()) == "default" && e.contains("template") && e["template"].is_string())
            parts.chat_template = e["template"].get<std::string>();
      }
    }
  }
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (parts.chat_template.empty() && fs::exists(jinja_path)) parts.chat_template = read_text_file(jinja_path, size_t{1} << 20);
  auto find_id = [&](const std::string& s) -> std::optional<int32_t> {
    if (s.empty()) return std::nullopt;
    for (const auto& t : parts.added) if (t.content == s) return t.id;
    for (size_t i = 0; i < parts.id_to_token.size(); ++i) if (parts.id_to_token[i] == s) return static_cast<int32_t>(i);
    return std::nullopt;
  };
  parts.bos_id = find_id(parts.bos_token);
  parts.eos_id = find_id(parts.eos_token);
  return std::make_unique<BpeTokenizer>(std::move(parts));
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_json_text(const std::string& text, const std::string& source) {
  return std::make_unique<BpeTokenizer>(parse_tokenizer_json(text, source));
}

}  // namespace tok

std::unique_ptr<Tokenizer> Tokenizer::from_hf_folder(const std::string& dir) { return tok::load(dir); }

}  // namespace nanoflow
