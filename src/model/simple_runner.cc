#include "model/simple_runner.h"

#include <algorithm>

#include "core/error.h"

namespace nanoflow {

SimpleRunner::SimpleRunner(Model& model) : model_(model) {
  const int64_t n = model.num_kv_pages();
  free_.reserve(n);
  for (int64_t p = n - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));  // pop_back gives 0 first
}

int SimpleRunner::add_sequence(std::span<const int32_t> prompt) {
  NF_CHECK_INPUT(!prompt.empty()) << "empty prompt";
  const int64_t vocab = model_.config().vocab_size;
  for (int32_t t : prompt) NF_CHECK_INPUT(t >= 0 && t < vocab) << "token id " << t << " outside vocabulary of " << vocab;
  Seq s;
  s.tokens.assign(prompt.begin(), prompt.end());
  s.live = true;
  seqs_.push_back(std::move(s));
  return static_cast<int>(seqs_.size()) - 1;
}

void SimpleRunner::append_token(int seq, int32_t token) {
  Seq& s = seqs_.at(seq);
  NF_CHECK(s.live) << "sequence " << seq << " was released";
  NF_CHECK_INPUT(token >= 0 && token < model_.config().vocab_size) << "token id " << token;
  s.tokens.push_back(token);
}

void SimpleRunner::release(int seq) {
  Seq& s = seqs_.at(seq);
  for (int32_t p : s.pages) free_.push_back(p);
  s.pages.clear();
  s.live = false;
}

void SimpleRunner::step(std::span<const Work> work, std::vector<float>& logits) {
  BatchPlan& p = plan_;
  p.token_ids.clear();
  p.positions.clear();
  p.q_start.assign(1, 0);
  p.kv_len.clear();
  p.page_start.assign(1, 0);
  p.page_ids.clear();
  p.sample_rows.clear();
  for (const Work& w : work) {
    Seq& s = seqs_.at(w.seq);
    NF_CHECK(s.live) << "sequence " << w.seq << " was released";
    NF_CHECK(w.num_tokens > 0 && w.num_tokens <= pending(w.seq))
        << "sequence " << w.seq << ": feed " << w.num_tokens << " of " << pending(w.seq) << " pending";
    const int32_t kv = s.computed + w.num_tokens;
    while (static_cast<int64_t>(s.pages.size()) * kPageSize < kv) {
      if (free_.empty()) NF_THROW(kResource) << "KV pool exhausted (" << model_.num_kv_pages() << " pages)";
      s.pages.push_back(free_.back());
      free_.pop_back();
    }
    for (int32_t i = 0; i < w.num_tokens; ++i) {
      p.token_ids.push_back(s.tokens[s.computed + i]);
      p.positions.push_back(s.computed + i);
    }
    p.q_start.push_back(p.num_tokens());
    p.kv_len.push_back(kv);
    p.page_ids.insert(p.page_ids.end(), s.pages.begin(), s.pages.end());
    p.page_start.push_back(static_cast<int32_t>(p.page_ids.size()));
    if (w.sample_all) {
      for (int32_t r = p.num_tokens() - w.num_tokens; r < p.num_tokens(); ++r) p.sample_rows.push_back(r);
    } else if (w.sample) {
      p.sample_rows.push_back(p.num_tokens() - 1);
    }
  }
  logits.resize(p.sample_rows.size() * model_.config().vocab_size);
  model_.forward(p, logits.data());
  for (const Work& w : work) seqs_[w.seq].computed += w.num_tokens;
}

int32_t argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

std::vector<int32_t> greedy_generate(Model& model, std::span<const int32_t> prompt, int n_new, int chunk,
                                     std::vector<float>* first_logits) {
  SimpleRunner r(model);
  const int s = r.add_sequence(prompt);
  const int64_t vocab = model.config().vocab_size;
  std::vector<float> logits;
  std::vector<int32_t> out;
  while (r.pending(s) > 0) {
    const int32_t n = chunk > 0 ? std::min<int32_t>(chunk, r.pending(s)) : r.pending(s);
    SimpleRunner::Work w{s, n, n == r.pending(s)};
    r.step({&w, 1}, logits);
  }
  if (first_logits) first_logits->assign(logits.begin(), logits.begin() + vocab);
  for (int i = 0; i < n_new; ++i) {
    const int32_t t = argmax({logits.data(), static_cast<size_t>(vocab)});
    out.push_back(t);
    if (i + 1 == n_new) break;
    r.append_token(s, t);
    SimpleRunner::Work w{s, 1, true};
    r.step({&w, 1}, logits);
  }
  r.release(s);
  return out;
}

}  // namespace nanoflow
