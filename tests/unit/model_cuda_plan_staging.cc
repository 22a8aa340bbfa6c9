// CudaPlanStaging (model/cuda_model.h) on the host: how a BatchPlan is packed for its one upload —
// fixed offsets, the decode/prefill split the attention kernels rely on, the prefill tile list,
// deferred-token pairs, sampling rows — and that plans beyond the buffers' capacities or with
// token ids outside the vocabulary are refused before anything reaches the GPU. Needs a CUDA build
// (no GPU: ordinary memory instead of pinned).
#include <gtest/gtest.h>

#if defined(NANOFLOW_HAVE_CUDA)
#include <cstring>

#include "core/error.h"
#include "model/cuda_model.h"

using namespace nanoflow;

namespace {

template <class T>
std::vector<T> read(const CudaPlanStaging& s, size_t off, size_t n) {
  std::vector<T> v(n);
  std::memcpy(v.data(), s.data() + off, n * sizeof(T));
  return v;
}

// A plan of sequences (query tokens, KV length after this step), pages handed out in order, token
// ids 100, 101, ..., the last token of each sequence sampled.
BatchPlan plan_of(const std::vector<std::pair<int32_t, int32_t>>& seqs) {
  BatchPlan p;
  p.q_start = {0};
  p.page_start = {0};
  int32_t page = 0;
  for (auto [qlen, kv] : seqs) {
    for (int32_t i = 0; i < qlen; ++i) {
      p.token_ids.push_back(100 + static_cast<int32_t>(p.token_ids.size()));
      p.positions.push_back(kv - qlen + i);
    }
    p.q_start.push_back(p.num_tokens());
    p.kv_len.push_back(kv);
    for (int32_t k = 0; k < (kv + 15) / 16; ++k) p.page_ids.push_back(page++);
    p.page_start.push_back(static_cast<int32_t>(p.page_ids.size()));
    p.sample_rows.push_back(p.num_tokens() - 1);
  }
  p.validate(64);
  return p;
}

// Sequences: two decodes (kv 20, 33), a 70-token prefill chunk (kv 70), one decode after it (kv 5).
BatchPlan mixed_plan() { return plan_of({{1, 20}, {1, 33}, {70, 70}, {1, 5}}); }

TEST(CudaPlanStaging, PacksMixedBatch) {
  const CudaPlanLayout L = CudaPlanLayout::make(256, 8, 8, 64);
  CudaPlanStaging st(L, /*pinned=*/false);
  const BatchPlan p = mixed_plan();
  std::vector<SampleRowParams> rows(4);
  for (int i = 0; i < 4; ++i) {
    rows[i].temperature = 0.5f * i;
    rows[i].top_k = 10 + i;
    rows[i].seed = 1000 + i;
    rows[i].step = 7 * i;
  }
  const std::vector<int32_t> deferred = {0, 3, 1, 2};  // rows 0 and 1 take samples 3 and 2
  const CudaPlanShape sh = st.pack(p, deferred, rows, 1000);
  EXPECT_EQ(sh.num_tokens, 73);
  EXPECT_EQ(sh.num_seqs, 4);
  EXPECT_EQ(sh.num_sampled, 4);
  EXPECT_EQ(sh.num_decode, 2);       // only the leading one-token sequences
  EXPECT_EQ(sh.max_decode_kv, 33);
  EXPECT_EQ(sh.max_kv, 70);
  EXPECT_EQ(sh.num_deferred, 2);
  EXPECT_EQ(sh.num_tiles, 3);        // 70 rows -> 2 tiles of 64, plus the trailing decode's tile
  EXPECT_EQ(sh.used_bytes, L.page_ids + p.page_ids.size() * 4);
  EXPECT_EQ(read<int32_t>(st, L.token_ids, 73), p.token_ids);
  EXPECT_EQ(read<int32_t>(st, L.positions, 73), p.positions);
  EXPECT_EQ(read<int32_t>(st, L.q_start, 5), p.q_start);
  EXPECT_EQ(read<int32_t>(st, L.kv_len, 4), p.kv_len);
  EXPECT_EQ(read<int32_t>(st, L.page_start, 5), p.page_start);
  EXPECT_EQ(read<int32_t>(st, L.page_ids, p.page_ids.size()), p.page_ids);
  EXPECT_EQ(read<int32_t>(st, L.sample_rows, 4), p.sample_rows);
  EXPECT_EQ(read<int32_t>(st, L.deferred, 4), deferred);
  const auto tiles = read<int32_t>(st, L.tiles, 6);
  int rows_covered_seq2 = 0;
  for (int t = 0; t < 3; ++t) {
    EXPECT_GE(tiles[2 * t], 2) << "a decode sequence leaked into the prefill tiles";
    if (tiles[2 * t] == 2) rows_covered_seq2 += std::min(64, 70 - tiles[2 * t + 1]);
  }
  EXPECT_EQ(rows_covered_seq2, 70);
  EXPECT_EQ(read<int32_t>(st, L.top_k, 4), (std::vector<int32_t>{10, 11, 12, 13}));
  EXPECT_EQ(read<uint64_t>(st, L.seed, 4), (std::vector<uint64_t>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(read<int64_t>(st, L.step, 4), (std::vector<int64_t>{0, 7, 14, 21}));
  EXPECT_EQ(read<float>(st, L.temperature, 4), (std::vector<float>{0.f, 0.5f, 1.f, 1.5f}));
  // Offsets are 16-byte aligned and page_ids come last (a prefix copy is enough).
  for (size_t off : {L.positions, L.q_start, L.kv_len, L.page_start, L.sample_rows, L.tiles, L.deferred,
                     L.temperature, L.top_p, L.min_p, L.top_k, L.seed, L.step, L.page_ids}) {
    EXPECT_EQ(off % 16, 0u);
    EXPECT_LE(off, L.page_ids);
  }
}

void expect_refused(CudaPlanStaging& st, const BatchPlan& p, const std::vector<int32_t>& deferred, int64_t vocab,
                    const char* what) {
  try {
    st.pack(p, deferred, {}, vocab);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << what << ": " << e.what();
  }
}

TEST(CudaPlanStaging, RefusesWhatDoesNotFit) {
  const BatchPlan p = mixed_plan();
  {
    CudaPlanStaging st(CudaPlanLayout::make(64, 8, 8, 64), false);
    expect_refused(st, p, {}, 1000, "more tokens than max_batch_tokens");
  }
  {
    CudaPlanStaging st(CudaPlanLayout::make(256, 3, 8, 64), false);
    expect_refused(st, p, {}, 1000, "more sequences than max_seqs");
  }
  {
    CudaPlanStaging st(CudaPlanLayout::make(256, 8, 3, 64), false);
    expect_refused(st, p, {}, 1000, "more sampled rows than max_sampled");
  }
  {
    CudaPlanStaging st(CudaPlanLayout::make(256, 8, 8, 8), false);
    expect_refused(st, p, {}, 1000, "more page ids than the page table holds");
  }
  CudaPlanStaging st(CudaPlanLayout::make(256, 8, 8, 64), false);
  expect_refused(st, p, {}, 150, "token id past the vocabulary");
  BatchPlan q = p;
  q.token_ids[5] = -1;
  expect_refused(st, q, {}, 1000, "negative token id");
  q.token_ids[0] = 5000;  // a deferred row's placeholder is not an id: it is overwritten on the GPU
  q.token_ids[5] = 105;
  EXPECT_NO_THROW(st.pack(q, {0, 0}, {}, 1000));
  expect_refused(st, q, {200, 0}, 1000, "deferred row out of range");
  EXPECT_THROW(CudaPlanLayout::make(0, 8, 8, 8), Error);
}

TEST(CudaPlanStaging, DecodeGraphBuckets) {
  EXPECT_EQ(decode_graph_seq_bucket(0, 512), 0);
  EXPECT_EQ(decode_graph_seq_bucket(1, 512), 1);
  EXPECT_EQ(decode_graph_seq_bucket(2, 512), 2);
  EXPECT_EQ(decode_graph_seq_bucket(3, 512), 4);
  EXPECT_EQ(decode_graph_seq_bucket(5, 512), 8);
  EXPECT_EQ(decode_graph_seq_bucket(100, 512), 128);
  EXPECT_EQ(decode_graph_seq_bucket(128, 512), 128);
  EXPECT_EQ(decode_graph_seq_bucket(129, 512), 192);
  EXPECT_EQ(decode_graph_seq_bucket(257, 512), 320);
  EXPECT_EQ(decode_graph_seq_bucket(500, 512), 512);
  EXPECT_EQ(decode_graph_seq_bucket(470, 480), 480);  // the cap is the last bucket
  EXPECT_EQ(decode_graph_seq_bucket(20, 24), 24);
  EXPECT_EQ(decode_graph_seq_bucket(25, 24), 0);      // past the cap: eager
  // Every count maps to a bucket >= it, and the buckets are few.
  std::vector<int32_t> seen;
  for (int32_t n = 1; n <= 512; ++n) {
    const int32_t b = decode_graph_seq_bucket(n, 512);
    ASSERT_GE(b, n);
    if (seen.empty() || seen.back() != b) seen.push_back(b);
  }
  EXPECT_EQ(seen.size(), 14u);  // 1..128 (8), 192..512 (6)
  EXPECT_EQ(decode_graph_kv_bucket(1), 256);
  EXPECT_EQ(decode_graph_kv_bucket(256), 256);
  EXPECT_EQ(decode_graph_kv_bucket(257), 512);
  EXPECT_EQ(decode_graph_kv_bucket(5000), 8192);
}

// Three decode sequences (kv 20, 33, 5; sequence 1's token deferred) padded to their bucket, 4: the
// real arrays are untouched, the padded sequence holds one token (id 0, position 0, kv 1)
// on the scratch page, and sampled rows and deferred pairs are filled up to the bucket.
TEST(CudaPlanStaging, PadsDecodePlanToBucket) {
  const BatchPlan p = plan_of({{1, 20}, {1, 33}, {1, 5}});
  const CudaPlanLayout L = CudaPlanLayout::make(16, 8, 8, 64);
  CudaPlanStaging st(L, false);
  const std::vector<int32_t> deferred = {1, 2};
  CudaPlanShape sh = st.pack(p, deferred, {}, 1000);
  ASSERT_EQ(sh.num_decode, 3);
  const int32_t scratch = 64;
  ASSERT_TRUE(st.pad_decode(sh, decode_graph_seq_bucket(3, 8), decode_graph_kv_bucket(sh.max_decode_kv), scratch));
  EXPECT_EQ(sh.num_tokens, 4);
  EXPECT_EQ(sh.num_seqs, 4);
  EXPECT_EQ(sh.num_decode, 4);
  EXPECT_EQ(sh.num_sampled, 4);
  EXPECT_EQ(sh.num_deferred, 4);
  EXPECT_EQ(sh.num_tiles, 0);
  EXPECT_EQ(sh.max_decode_kv, 256);
  EXPECT_EQ(sh.max_kv, 256);
  EXPECT_EQ(sh.used_bytes, L.page_ids + (p.page_ids.size() + 1) * 4);
  EXPECT_EQ(read<int32_t>(st, L.token_ids, 4), (std::vector<int32_t>{100, 101, 102, 0}));
  EXPECT_EQ(read<int32_t>(st, L.positions, 4), (std::vector<int32_t>{19, 32, 4, 0}));
  EXPECT_EQ(read<int32_t>(st, L.q_start, 5), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(read<int32_t>(st, L.kv_len, 4), (std::vector<int32_t>{20, 33, 5, 1}));
  const int32_t np = static_cast<int32_t>(p.page_ids.size());  // 2 + 3 + 1 = 6
  EXPECT_EQ(read<int32_t>(st, L.page_start, 5), (std::vector<int32_t>{0, 2, 5, 6, 7}));
  auto pages = p.page_ids;
  pages.push_back(scratch);
  EXPECT_EQ(read<int32_t>(st, L.page_ids, static_cast<size_t>(np) + 1), pages);
  EXPECT_EQ(read<int32_t>(st, L.sample_rows, 4), (std::vector<int32_t>{0, 1, 2, 3}));
  // The real pair first; fillers write the dump row (max_tokens), never a token a kernel reads.
  EXPECT_EQ(read<int32_t>(st, L.deferred, 8), (std::vector<int32_t>{1, 2, 16, 0, 16, 0, 16, 0}));

  // A bucket of exactly the batch pads nothing but the deferred pairs.
  sh = st.pack(p, deferred, {}, 1000);
  ASSERT_TRUE(st.pad_decode(sh, 3, 256, scratch));
  EXPECT_EQ(sh.num_seqs, 3);
  EXPECT_EQ(sh.num_deferred, 3);
  EXPECT_EQ(read<int32_t>(st, L.deferred, 6), (std::vector<int32_t>{1, 2, 16, 0, 16, 0}));
  EXPECT_EQ(read<int32_t>(st, L.page_start, 4), (std::vector<int32_t>{0, 2, 5, 6}));

  // Refused, shape untouched: a prefill sequence, a bucket past a capacity, a bucket below the
  // batch, a KV bucket below the longest KV, a page table with no room.
  BatchPlan q = p;
  q.token_ids.push_back(7);
  q.positions.push_back(5);
  q.q_start.back() = 4;
  q.kv_len.back() = 6;
  q.sample_rows.back() = 3;
  q.validate(64);
  CudaPlanShape shq = st.pack(q, {}, {}, 1000);
  const CudaPlanShape before = shq;
  EXPECT_FALSE(st.pad_decode(shq, 4, 256, scratch));
  EXPECT_EQ(shq.num_seqs, before.num_seqs);
  EXPECT_EQ(shq.num_tokens, before.num_tokens);
  sh = st.pack(p, deferred, {}, 1000);
  EXPECT_FALSE(st.pad_decode(sh, 16, 256, scratch));  // max_seqs 8
  EXPECT_FALSE(st.pad_decode(sh, 2, 256, scratch));
  EXPECT_FALSE(st.pad_decode(sh, 4, 16, scratch));
  EXPECT_EQ(sh.num_seqs, 3);
  CudaPlanStaging tight(CudaPlanLayout::make(16, 8, 8, 6), false);
  sh = tight.pack(p, deferred, {}, 1000);
  EXPECT_FALSE(tight.pad_decode(sh, 4, 256, scratch));
  EXPECT_TRUE(tight.pad_decode(sh, 3, 256, scratch));
}

// Nano-batches (split_nano_batches): whole sequences, boundaries at the nearest sequence boundary
// to each share of the tokens or at the end of the decode sequences; tiles and sampled rows follow.
TEST(CudaPlanStaging, SplitsIntoNanoBatches) {
  const CudaPlanLayout L = CudaPlanLayout::make(256, 8, 8, 64);
  CudaPlanStaging st(L, /*pinned=*/false);
  const CudaPlanShape sh = st.pack(mixed_plan(), {}, {}, 1000);  // q_start 0 1 2 72 73; 3 tiles
  auto at_decode = st.split(sh, {{0, 341}, {341, 1024}}, true);
  ASSERT_EQ(at_decode.size(), 2u);
  EXPECT_EQ(at_decode[0].token_begin, 0);
  EXPECT_EQ(at_decode[0].token_end, 2);
  EXPECT_EQ(at_decode[0].seq_end, 2);
  EXPECT_EQ(at_decode[0].decode_seqs(), 2);
  EXPECT_EQ(at_decode[0].tiles(), 0);
  EXPECT_EQ(at_decode[0].sampled(), 2);
  EXPECT_EQ(at_decode[1].seq_begin, 2);
  EXPECT_EQ(at_decode[1].seq_end, 4);
  EXPECT_EQ(at_decode[1].token_begin, 2);
  EXPECT_EQ(at_decode[1].token_end, 73);
  EXPECT_EQ(at_decode[1].decode_seqs(), 0);  // the trailing one-token sequence goes to the prefill kernel
  EXPECT_EQ(at_decode[1].tile_begin, 0);
  EXPECT_EQ(at_decode[1].tile_end, 3);
  EXPECT_EQ(at_decode[1].sample_begin, 2);
  EXPECT_EQ(at_decode[1].sample_end, 4);

  // 1000/1024 of 73 tokens is 71: the nearest sequence boundary is 72 (after the chunk).
  auto late = st.split(sh, {{0, 1000}, {1000, 1024}}, false);
  EXPECT_EQ(late[0].seq_end, 3);
  EXPECT_EQ(late[0].token_end, 72);
  EXPECT_EQ(late[0].tile_end, 2);  // the chunk's two tiles
  EXPECT_EQ(late[1].seq_begin, 3);
  EXPECT_EQ(late[1].tiles(), 1);
  EXPECT_EQ(late[1].sampled(), 1);
  EXPECT_EQ(late[1].decode_seqs(), 0);

  // Small shares snap to the same boundary: the middle nano-batch is empty, never negative.
  auto three = st.split(sh, {{0, 8}, {8, 16}, {16, 1024}}, false);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].seq_end, 1);
  EXPECT_EQ(three[1].tokens(), 0);
  EXPECT_EQ(three[1].sampled(), 0);
  EXPECT_EQ(three[2].seq_begin, 1);
  EXPECT_EQ(three[2].seq_end, 4);
  EXPECT_EQ(three[2].decode_seqs(), 1);
  int32_t tokens = 0;
  for (const auto& r : three) tokens += r.tokens();
  EXPECT_EQ(tokens, sh.num_tokens);

  EXPECT_THROW(st.split(sh, {{0, 300}, {300, 600}, {600, 1024}}, true), Error);
}

// The tile list comes heaviest first; a split regroups it by nano-batch, in place.
TEST(CudaPlanStaging, SplitRegroupsTilesByNanoBatch) {
  const BatchPlan p = plan_of({{1, 20}, {10, 10}, {64, 500}});
  const CudaPlanLayout L = CudaPlanLayout::make(256, 8, 8, 64);
  CudaPlanStaging st(L, /*pinned=*/false);
  const CudaPlanShape sh = st.pack(p, {}, {}, 1000);
  ASSERT_EQ(sh.num_tiles, 2);
  EXPECT_EQ(read<int32_t>(st, L.tiles, 4)[0], 2);  // the 500-key sequence's tile first
  // 11 of 75 tokens -> the boundary after sequence 1 (token 11): nano-batch 0 = sequences 0 and 1.
  const auto r = st.split(sh, {{0, 150}, {150, 1024}}, false);
  EXPECT_EQ(r[0].seq_end, 2);
  EXPECT_EQ(r[0].tiles(), 1);
  EXPECT_EQ(r[1].tiles(), 1);
  const auto tiles = read<int32_t>(st, L.tiles, 4);
  EXPECT_EQ(tiles[0], 1);
  EXPECT_EQ(tiles[2], 2);
}

}  // namespace
#else
TEST(CudaPlanStaging, NeedsCudaBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
