// Test doubles for engine tests without weights.
//
// FakeModel keeps token ids as its "KV" ([page][slot] = token id written at that position) and
// makes the logits of a row a hash of the whole sequence it can read through the plan's page
// table. So the output depends on every KV slot the engine points it at: a wrong page table, a
// bad prefix-cache hit, a missed copy-on-write or a wrong recompute after preemption changes the
// tokens, and batched-vs-solo equality really tests the KV bookkeeping.
//
// FakeTokenizer: id 0 is EOS (special, no text); id i > 0 decodes to the i-th piece of a small
// table of ASCII / multi-byte pieces.
#pragma once
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow::testing {

inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class FakeModel final : public Model {
 public:
  FakeModel(int32_t vocab, int64_t pages, int max_pos = 4096, int sleep_us = 0)
      : pages_(pages), sleep_us_(sleep_us), kv_(static_cast<size_t>(pages) * kPageSize, -1) {
    cfg_.architecture = "fake";
    cfg_.name = "fake";
    cfg_.vocab_size = vocab;
    cfg_.max_position_embeddings = max_pos;
    cfg_.eos_token_id = 0;
    cfg_.num_layers = 1;
  }
  const ModelConfig& config() const override { return cfg_; }
  int64_t num_kv_pages() const override { return pages_; }
  void forward(const BatchPlan& plan, float* logits) override {
    plan.validate(pages_);
    forwards_.fetch_add(1);
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    // Write K/V (the token ids) of every planned token.
    for (int32_t s = 0; s < plan.num_seqs(); ++s) {
      for (int32_t t = plan.q_start[s]; t < plan.q_start[s + 1]; ++t) {
        const int32_t pos = plan.positions[t];
        NF_CHECK(plan.token_ids[t] >= 0 && plan.token_ids[t] < cfg_.vocab_size) << "fake model got token " << plan.token_ids[t];
        const int32_t page = plan.page_ids[plan.page_start[s] + pos / kPageSize];
        kv_[static_cast<size_t>(page) * kPageSize + pos % kPageSize] = plan.token_ids[t];
      }
    }
    // Logits of sampled rows: a hash of the sequence's KV up to that row.
    size_t row = 0;
    for (int32_t r : plan.sample_rows) {
      int32_t s = 0;
      while (plan.q_start[s + 1] <= r) ++s;
      const int32_t pos = plan.positions[r];
      uint64_t h = 1469598103934665603ull;
      for (int32_t p = 0; p <= pos; ++p) {
        const int32_t page = plan.page_ids[plan.page_start[s] + p / kPageSize];
        h = mix64(h ^ static_cast<uint64_t>(kv_[static_cast<size_t>(page) * kPageSize + p % kPageSize] + 7));
      }
      float* out = logits + row * static_cast<size_t>(cfg_.vocab_size);
      for (int32_t v = 0; v < cfg_.vocab_size; ++v)
        out[v] = static_cast<float>(mix64(h + static_cast<uint64_t>(v)) % 10000) / 1000.0f - 5.0f;
      ++row;
    }
  }
  void copy_page(int32_t src, int32_t dst) override {
    std::memcpy(&kv_[static_cast<size_t>(dst) * kPageSize], &kv_[static_cast<size_t>(src) * kPageSize],
                sizeof(int32_t) * kPageSize);
    copies_.fetch_add(1);
  }
  int64_t forwards() const { return forwards_.load(); }
  int64_t copies() const { return copies_.load(); }

 private:
  ModelConfig cfg_;
  int64_t pages_;
  int sleep_us_;
  std::vector<int32_t> kv_;  // [pages][kPageSize] token ids
  std::atomic<int64_t> forwards_{0}, copies_{0};
};

class FakeTokenizer final : public Tokenizer {
 public:
  explicit FakeTokenizer(int32_t vocab) : vocab_(vocab) {
    static const char* kPieces[] = {"a", "b", "c", " ", "ab", "ST", "OP", "S", "TOP", "\xC3", "\xA9", "x", "yz", "\n", "é", "!"};
    pieces_.push_back("");  // EOS
    for (int32_t i = 1; i < vocab; ++i) pieces_.push_back(kPieces[(i - 1) % 16]);
  }
  std::vector<int32_t> encode(std::string_view, bool) const override { NF_THROW(kUnsupported) << "fake"; }
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string out;
    for (int32_t id : ids) {
      NF_CHECK_INPUT(id >= 0 && id < vocab_) << "id " << id;
      if (id == 0 && skip_special_tokens) continue;
      out += id == 0 ? std::string("<eos>") : pieces_[static_cast<size_t>(id)];
    }
    // Invalid UTF-8 becomes U+FFFD as HF does (only the lone bytes our table can produce).
    std::string fixed;
    for (size_t i = 0; i < out.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(out[i]);
      if (c == 0xC3 && i + 1 < out.size() && (static_cast<unsigned char>(out[i + 1]) & 0xC0) == 0x80) {
        fixed += out.substr(i, 2);
        ++i;
      } else if (c >= 0x80) {
        fixed += "\xEF\xBF\xBD";
      } else {
        fixed += out[i];
      }
    }
    return fixed;
  }
  std::string token_bytes(int32_t id) const override { return pieces_.at(static_cast<size_t>(id)); }
  std::string id_to_token(int32_t id) const override {
    NF_CHECK_INPUT(id >= 0 && id < vocab_) << "id " << id;
    return pieces_[static_cast<size_t>(id)];
  }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  int32_t vocab_size() const override { return vocab_; }
  bool is_special(int32_t id) const override { return id == 0; }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> eos_id() const override { return 0; }
  const std::string& chat_template() const override { return empty_; }
  std::string bos_token() const override { return ""; }
  std::string eos_token() const override { return "<eos>"; }

 private:
  int32_t vocab_;
  std::vector<std::string> pieces_;
  std::string empty_;
};

}  // namespace nanoflow::testing
