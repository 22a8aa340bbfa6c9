// GPU sampling against float64 references computed here from the documented semantics
// (kernels/cuda/sampling.h): greedy = argmax; logprobs = CPU log_softmax (kernels/cpu/ops.h) of
// the raw logits; penalties; the filtered Gumbel-max draw recomputed with the same uniforms; and
// the empirical distribution of many seeded draws against the filtered softmax.
#include <algorithm>
#include <cmath>
#include <map>

#include "gpu/gpu_test_util.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/sampling.h"

namespace nanoflow::gputest {
namespace {

struct RowCfg {
  float temperature = 1.f;
  int top_k = 0;
  float top_p = 1.f, min_p = 0.f;
  float rep = 1.f, pres = 0.f, freq = 0.f;
  std::vector<std::pair<int, int>> hist;  // (token, generated count)
  uint64_t seed = 0;
  int64_t step = 0;
};

struct Result {
  std::vector<int32_t> sampled, top_ids;
  std::vector<float> sampled_lp, top_lp;
};

Result run_gpu(const std::vector<float>& logits, int rows, int vocab, const std::vector<RowCfg>& cfg, int nlp) {
  std::vector<float> temp, topp, minp, rep, pres, freq;
  std::vector<int32_t> topk, hs{0}, ht, hc;
  std::vector<uint64_t> seed;
  std::vector<int64_t> step;
  for (auto& c : cfg) {
    temp.push_back(c.temperature);
    topk.push_back(c.top_k);
    topp.push_back(c.top_p);
    minp.push_back(c.min_p);
    rep.push_back(c.rep);
    pres.push_back(c.pres);
    freq.push_back(c.freq);
    for (auto [t, n] : c.hist) {
      ht.push_back(t);
      hc.push_back(n);
    }
    hs.push_back(static_cast<int32_t>(ht.size()));
    seed.push_back(c.seed);
    step.push_back(c.step);
  }
  auto dl = upload(logits), dt = upload(temp), dk = upload(topk), dp = upload(topp), dm = upload(minp), dr = upload(rep),
       dpr = upload(pres), df = upload(freq), dhs = upload(hs), dht = upload(ht), dhc = upload(hc), ds = upload(seed),
       dst = upload(step);
  DeviceBuffer dout(rows * 4), dlp(rows * 4), dti(std::max(1, rows * nlp) * 4), dtl(std::max(1, rows * nlp) * 4);
  poison(dout);
  poison(dlp);
  poison(dti);
  poison(dtl);
  cuda::SamplingParams p;
  p.logits = dl.as<float>();
  p.rows = rows;
  p.vocab = vocab;
  p.temperature = dt.as<float>();
  p.top_k = dk.as<int32_t>();
  p.top_p = dp.as<float>();
  p.min_p = dm.as<float>();
  p.repetition_penalty = dr.as<float>();
  p.presence_penalty = dpr.as<float>();
  p.frequency_penalty = df.as<float>();
  p.hist_start = dhs.as<int32_t>();
  p.hist_token = dht.as<int32_t>();
  p.hist_count = dhc.as<int32_t>();
  p.seed = ds.as<uint64_t>();
  p.step = dst.as<int64_t>();
  p.num_logprobs = nlp;
  p.sampled = dout.as<int32_t>();
  p.sampled_logprob = dlp.as<float>();
  p.top_ids = dti.as<int32_t>();
  p.top_logprobs = dtl.as<float>();
  cuda::sample(p, nullptr);
  sync();
  Result r{download<int32_t>(dout, rows), download<int32_t>(dti, size_t(rows) * nlp), download<float>(dlp, rows),
           download<float>(dtl, size_t(rows) * nlp)};
  return r;
}

// float64 reference of the filtered draw; returns the token and the margin between the best and
// second-best perturbed scores (a near-tie may legitimately differ by rounding).
std::pair<int, double> reference_draw(std::vector<double> l, const RowCfg& c) {
  const int n = static_cast<int>(l.size());
  for (auto [t, cnt] : c.hist) {
    double& v = l[t];
    if (c.rep != 1.f) v = v > 0 ? v / c.rep : v * c.rep;
    v -= double(c.freq) * cnt + (cnt > 0 ? c.pres : 0.f);
  }
  const double mx = *std::max_element(l.begin(), l.end());
  if (c.temperature == 0.f) return {int(std::max_element(l.begin(), l.end()) - l.begin()), 1.0};
  std::vector<double> sorted = l;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  double cut = -INFINITY;
  if (c.top_k > 0 && c.top_k < n) cut = sorted[c.top_k - 1];
  if (c.top_p < 1.f) {
    double total = 0;
    for (double v : sorted)
      if (v >= cut) total += std::exp((v - mx) / c.temperature);
    double cum = 0;
    for (double v : sorted) {
      if (v < cut) break;
      cum += std::exp((v - mx) / c.temperature);
      if (cum >= c.top_p * total) {
        cut = std::max(cut, v);
        break;
      }
    }
  }
  if (c.min_p > 0.f) cut = std::max(cut, mx + c.temperature * std::log(double(c.min_p)));
  double best = -INFINITY, second = -INFINITY;
  int arg = -1;
  for (int i = 0; i < n; ++i) {
    if (l[i] < cut) continue;
    const double u = cuda::sampling_uniform(c.seed, c.step, i);
    const double g = l[i] / c.temperature - std::log(-std::log(u));
    if (g > best) {
      second = best;
      best = g;
      arg = i;
    } else if (g > second) {
      second = g;
    }
  }
  return {arg, best - second};
}

TEST(GpuSampling, GreedyLogprobsAndPenalties) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(21);
  for (int vocab : {49152, 128256, 1000}) {
    SCOPED_TRACE(testing::Message() << "vocab=" << vocab);
    const int rows = 6, nlp = 5;
    std::vector<float> logits(size_t(rows) * vocab);
    std::normal_distribution<float> nd(0.f, 3.f);
    for (auto& v : logits) v = nd(rng);
    std::vector<RowCfg> cfg(rows);
    for (auto& c : cfg) c.temperature = 0.f;
    // Row 1: the argmax is penalized away; row 2: presence/frequency; row 3: top_k = 1 with T > 0.
    const int am1 = int(std::max_element(logits.begin() + vocab, logits.begin() + 2 * vocab) - logits.begin()) - vocab;
    cfg[1].rep = 100.f;
    cfg[1].hist = {{am1, 0}, {3, 2}};
    cfg[2].pres = 1.5f;
    cfg[2].freq = 0.5f;
    cfg[2].hist = {{7, 3}, {11, 0}, {vocab - 1, 1}};
    cfg[3].temperature = 0.7f;
    cfg[3].top_k = 1;
    auto r = run_gpu(logits, rows, vocab, cfg, nlp);
    std::vector<float> lsm = logits;
    cpu::log_softmax(lsm.data(), rows, vocab);
    for (int i = 0; i < rows; ++i) {
      std::vector<double> row(logits.begin() + size_t(i) * vocab, logits.begin() + size_t(i + 1) * vocab);
      auto [want, margin] = reference_draw(row, cfg[i]);
      EXPECT_EQ(r.sampled[i], want) << "row " << i;
      EXPECT_NEAR(r.sampled_lp[i], lsm[size_t(i) * vocab + r.sampled[i]], 1e-3) << "row " << i;
      // Top logprobs: descending raw log-softmax.
      std::vector<int> idx(vocab);
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + nlp, idx.end(),
                        [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (int t = 0; t < nlp; ++t) {
        EXPECT_EQ(r.top_ids[i * nlp + t], idx[t]) << "row " << i << " rank " << t;
        EXPECT_NEAR(r.top_lp[i * nlp + t], lsm[size_t(i) * vocab + idx[t]], 1e-3);
      }
    }
    EXPECT_NE(r.sampled[1], am1) << "repetition penalty did not move the argmax";
  }
}

TEST(GpuSampling, FilteredDrawsMatchReference) {
  NF_SKIP_WITHOUT_GPU();
  std::mt19937 rng(22);
  const int vocab = 32000, rows = 64;
  std::vector<float> logits(size_t(rows) * vocab);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (auto& v : logits) v = nd(rng);
  std::vector<RowCfg> cfg(rows);
  for (int i = 0; i < rows; ++i) {
    auto& c = cfg[i];
    c.temperature = 0.3f + 0.1f * (i % 12);
    c.top_k = (i % 4 == 0) ? 0 : (i % 4 == 1 ? 50 : (i % 4 == 2 ? 1000 : 5));
    c.top_p = (i % 3 == 0) ? 1.f : (i % 3 == 1 ? 0.9f : 0.5f);
    c.min_p = (i % 5 == 0) ? 0.05f : 0.f;
    c.seed = 1000 + i;
    c.step = i * 7;
    if (i % 6 == 0) {
      c.rep = 1.3f;
      c.freq = 0.2f;
      c.hist = {{i, 1}, {i + 100, 0}};
    }
  }
  auto r = run_gpu(logits, rows, vocab, cfg, 0);
  int mismatches = 0;
  for (int i = 0; i < rows; ++i) {
    std::vector<double> row(logits.begin() + size_t(i) * vocab, logits.begin() + size_t(i + 1) * vocab);
    auto [want, margin] = reference_draw(row, cfg[i]);
    if (r.sampled[i] != want) {
      ++mismatches;
      EXPECT_LT(margin, 1e-3) << "row " << i << ": got " << r.sampled[i] << " want " << want << " (not a near-tie)";
    }
  }
  EXPECT_LE(mismatches, 1);
}

TEST(GpuSampling, EmpiricalDistributionFollowsFilteredSoftmax) {
  NF_SKIP_WITHOUT_GPU();
  // 8192 draws of one 20-token row with different seeds: frequencies vs the filtered softmax.
  const int vocab = 24, rows = 8192;
  std::vector<float> base(vocab);
  for (int i = 0; i < vocab; ++i) base[i] = std::sin(1.7f * i) * 2.f;
  std::vector<float> logits;
  for (int r = 0; r < rows; ++r) logits.insert(logits.end(), base.begin(), base.end());
  RowCfg c;
  c.temperature = 0.8f;
  c.top_k = 10;
  c.top_p = 0.8f;
  std::vector<RowCfg> cfg(rows, c);
  for (int r = 0; r < rows; ++r) cfg[r].seed = 77 + r * 13;
  auto res = run_gpu(logits, rows, vocab, cfg, 0);
  // Expected: top-10 by logit, then the shortest prefix reaching 80% of their tempered mass.
  std::vector<int> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return base[a] > base[b]; });
  std::vector<double> w(vocab, 0.0);
  double total = 0;
  for (int i = 0; i < 10; ++i) total += std::exp((base[idx[i]] - base[idx[0]]) / c.temperature);
  double cum = 0, kept = 0;
  for (int i = 0; i < 10; ++i) {
    const double m = std::exp((base[idx[i]] - base[idx[0]]) / c.temperature);
    w[idx[i]] = m;
    cum += m;
    kept += m;
    if (cum >= 0.8 * total) break;
  }
  std::vector<int> counts(vocab, 0);
  for (int t : res.sampled) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, vocab);
    counts[t]++;
  }
  double chi2 = 0;
  int dof = -1;
  for (int i = 0; i < vocab; ++i) {
    const double e = rows * w[i] / kept;
    if (e == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is filtered out but was drawn";
      continue;
    }
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++dof;
  }
  // chi-square with <= 9 degrees of freedom: 40 is far beyond the 99.99th percentile (~33).
  EXPECT_LT(chi2, 40.0) << "dof " << dof;
}

}  // namespace
}  // namespace nanoflow::gputest
