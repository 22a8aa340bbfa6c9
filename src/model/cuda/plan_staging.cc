// CudaPlanLayout / CudaPlanStaging (model/cuda_model.h): a BatchPlan packed into pinned memory
// with fixed offsets and sent to the device with one cudaMemcpyAsync.
#if defined(NANOFLOW_HAVE_CUDA)
#include <algorithm>
#include <cstring>
#include <new>

#include "core/error.h"
#include "kernels/cuda/prefill_attention.h"
#include "model/cuda_model.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow {
namespace {

size_t take(size_t& at, size_t bytes) {
  const size_t off = at;
  at += (bytes + 15) / 16 * 16;
  return off;
}

template <class T>
T* at(uint8_t* base, size_t off) {
  return reinterpret_cast<T*>(base + off);
}

}  // namespace

CudaPlanLayout CudaPlanLayout::make(int32_t max_tokens, int32_t max_seqs, int32_t max_sampled, int32_t max_pages) {
  NF_CHECK_INPUT(max_tokens > 0 && max_seqs > 0 && max_sampled > 0 && max_pages > 0)
      << "plan capacities tokens=" << max_tokens << " seqs=" << max_seqs << " sampled=" << max_sampled
      << " pages=" << max_pages;
  CudaPlanLayout L;
  L.max_tokens = max_tokens;
  L.max_seqs = max_seqs;
  L.max_sampled = max_sampled;
  // A sequence yields at most one partial tile beyond its full 64-row tiles.
  L.max_tiles = max_tokens / cuda::kPrefillTileRows + max_seqs;
  L.max_pages = max_pages;
  const size_t T = static_cast<size_t>(max_tokens), S = static_cast<size_t>(max_seqs),
               R = static_cast<size_t>(max_sampled);
  size_t a = 0;
  L.token_ids = take(a, (T + 1) * 4);  // + the dump row of padded decode plans
  L.positions = take(a, T * 4);
  L.q_start = take(a, (S + 1) * 4);
  L.kv_len = take(a, S * 4);
  L.page_start = take(a, (S + 1) * 4);
  L.sample_rows = take(a, R * 4);
  L.tiles = take(a, static_cast<size_t>(L.max_tiles) * 8);
  L.deferred = take(a, T * 8);
  L.temperature = take(a, R * 4);
  L.top_p = take(a, R * 4);
  L.min_p = take(a, R * 4);
  L.top_k = take(a, R * 4);
  L.seed = take(a, R * 8);
  L.step = take(a, R * 8);
  L.page_ids = take(a, static_cast<size_t>(max_pages) * 4);
  L.bytes = a;
  return L;
}

CudaPlanStaging::CudaPlanStaging(const CudaPlanLayout& layout, bool pinned) : layout_(layout), pinned_(pinned) {
  void* p = nullptr;
  if (pinned_) {
    NF_CUDA_CHECK(cudaMallocHost(&p, layout_.bytes)) << "pinned plan buffer of " << layout_.bytes << " bytes";
  } else {
    p = ::operator new(layout_.bytes, std::align_val_t{64});
  }
  host_ = static_cast<uint8_t*>(p);
  std::memset(host_, 0, layout_.bytes);
}

CudaPlanStaging::~CudaPlanStaging() {
  if (host_ == nullptr) return;
  if (pinned_) {
    cudaFreeHost(host_);  // nothing useful to do with an error in a destructor
  } else {
    ::operator delete(host_, std::align_val_t{64});
  }
}

CudaPlanShape CudaPlanStaging::pack(const BatchPlan& plan, const std::vector<int32_t>& deferred,
                                    const std::vector<SampleRowParams>& rows, int64_t vocab) {
  const CudaPlanLayout& L = layout_;
  CudaPlanShape sh;
  sh.num_tokens = plan.num_tokens();
  sh.num_seqs = plan.num_seqs();
  sh.num_sampled = static_cast<int32_t>(plan.sample_rows.size());
  sh.num_deferred = static_cast<int32_t>(deferred.size() / 2);
  NF_CHECK_INPUT(sh.num_tokens <= L.max_tokens) << "plan has " << sh.num_tokens << " tokens; the CUDA model was set up for "
                                                << L.max_tokens << " (max_batch_tokens)";
  NF_CHECK_INPUT(sh.num_seqs <= L.max_seqs) << "plan has " << sh.num_seqs << " sequences; limit " << L.max_seqs;
  NF_CHECK_INPUT(sh.num_sampled <= L.max_sampled) << "plan samples " << sh.num_sampled << " rows; limit " << L.max_sampled;
  NF_CHECK_INPUT(plan.page_ids.size() <= static_cast<size_t>(L.max_pages))
      << "plan names " << plan.page_ids.size() << " pages; limit " << L.max_pages;
  NF_CHECK_INPUT(rows.empty() || rows.size() == plan.sample_rows.size())
      << "sampling rows " << rows.size() << " vs sample rows " << plan.sample_rows.size();
  NF_CHECK_INPUT(deferred.size() % 2 == 0 && sh.num_deferred <= sh.num_tokens) << "deferred pairs " << deferred.size();
  // Token ids index the embedding table on the device: a bad one must never get there.
  std::vector<bool> is_deferred;
  if (sh.num_deferred > 0) {
    is_deferred.assign(static_cast<size_t>(sh.num_tokens), false);
    for (int32_t i = 0; i < sh.num_deferred; ++i) {
      const int32_t row = deferred[2 * i];
      NF_CHECK_INPUT(row >= 0 && row < sh.num_tokens) << "deferred token row " << row;
      is_deferred[static_cast<size_t>(row)] = true;
    }
  }
  for (int32_t t = 0; t < sh.num_tokens; ++t) {
    const int32_t id = plan.token_ids[static_cast<size_t>(t)];
    NF_CHECK_INPUT((!is_deferred.empty() && is_deferred[static_cast<size_t>(t)]) || (id >= 0 && id < vocab))
        << "token id " << id << " at row " << t << " outside the vocabulary [0, " << vocab << ")";
  }
  auto copy = [&](size_t off, const std::vector<int32_t>& v) {
    if (!v.empty()) std::memcpy(host_ + off, v.data(), v.size() * 4);
  };
  copy(L.token_ids, plan.token_ids);
  copy(L.positions, plan.positions);
  copy(L.q_start, plan.q_start);
  copy(L.kv_len, plan.kv_len);
  copy(L.page_start, plan.page_start);
  copy(L.sample_rows, plan.sample_rows);
  copy(L.deferred, deferred);
  copy(L.page_ids, plan.page_ids);

  // Decode sequences (one query token) at the front go to decode attention; the rest to the
  // prefill kernel through its tile list.
  while (sh.num_decode < sh.num_seqs &&
         plan.q_start[static_cast<size_t>(sh.num_decode) + 1] - plan.q_start[static_cast<size_t>(sh.num_decode)] == 1) {
    sh.max_decode_kv = std::max(sh.max_decode_kv, plan.kv_len[static_cast<size_t>(sh.num_decode)]);
    sh.sum_decode_kv += plan.kv_len[static_cast<size_t>(sh.num_decode)];
    ++sh.num_decode;
  }
  for (int32_t k : plan.kv_len) sh.max_kv = std::max(sh.max_kv, k);
  for (int32_t i = sh.num_decode; i < sh.num_seqs; ++i) {
    const int64_t q = plan.q_start[static_cast<size_t>(i) + 1] - plan.q_start[static_cast<size_t>(i)];
    const int64_t kv = plan.kv_len[static_cast<size_t>(i)];
    sh.prefill_attended += q * (kv - q) + q * (q + 1) / 2;  // query j of q sees kv - q + j + 1 keys
  }
  if (sh.num_decode < sh.num_seqs) {
    const std::vector<int32_t> tiles = cuda::plan_prefill_attention(plan.q_start, plan.kv_len);
    int32_t* dst = at<int32_t>(host_, L.tiles);
    for (size_t i = 0; i + 1 < tiles.size(); i += 2) {
      if (tiles[i] < sh.num_decode) continue;
      NF_CHECK(sh.num_tiles < L.max_tiles) << "prefill tiles exceed " << L.max_tiles;
      dst[2 * sh.num_tiles] = tiles[i];
      dst[2 * sh.num_tiles + 1] = tiles[i + 1];
      ++sh.num_tiles;
    }
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    at<float>(host_, L.temperature)[r] = rows[r].temperature;
    at<float>(host_, L.top_p)[r] = rows[r].top_p;
    at<float>(host_, L.min_p)[r] = rows[r].min_p;
    at<int32_t>(host_, L.top_k)[r] = rows[r].top_k;
    at<uint64_t>(host_, L.seed)[r] = rows[r].seed;
    at<int64_t>(host_, L.step)[r] = rows[r].step;
  }
  sh.used_bytes = L.page_ids + plan.page_ids.size() * 4;
  return sh;
}

std::vector<NanoBatchRange> split_nano_batches(const int32_t* q_start, int32_t* tiles, const int32_t* sample_rows,
                                               const CudaPlanShape& sh,
                                               const std::vector<std::pair<int32_t, int32_t>>& fractions,
                                               bool at_decode) {
  const size_t n = fractions.size();
  NF_CHECK_INPUT(n > 0) << "no nano-batches";
  NF_CHECK_INPUT(!at_decode || n == 2) << "a split at the decode sequences needs 2 nano-batches, not " << n;
  // A nano-batch's LM head reads its own token rows only: sample rows must be in token order.
  NF_CHECK(std::is_sorted(sample_rows, sample_rows + sh.num_sampled)) << "sample rows out of token order";
  std::vector<NanoBatchRange> out(n);
  int32_t seq = 0;
  for (size_t i = 0; i < n; ++i) {
    NanoBatchRange& r = out[i];
    r.seq_begin = seq;
    r.token_begin = q_start[seq];
    int32_t end = sh.num_seqs;
    if (i + 1 < n) {
      if (at_decode) {
        end = sh.num_decode;
      } else {
        // Nearest sequence boundary to the nano-batch's share of the tokens, not before `seq`.
        const int64_t target = (int64_t{sh.num_tokens} * fractions[i].second + 512) / 1024;
        end = seq;
        while (end < sh.num_seqs && q_start[end + 1] <= target) ++end;
        if (end < sh.num_seqs && q_start[end + 1] - target < target - q_start[end]) ++end;
      }
    }
    r.seq_end = std::max(end, seq);
    r.token_end = q_start[r.seq_end];
    r.decode_end = std::clamp(sh.num_decode, r.seq_begin, r.seq_end);
    seq = r.seq_end;
  }
  // The tile list comes heaviest first; regroup it by nano-batch (keeping that order inside each)
  // so that each nano-batch's tiles are one contiguous range.
  auto nb_of = [&](int32_t s) {
    size_t i = 0;
    while (i + 1 < n && s >= out[i].seq_end) ++i;
    return i;
  };
  std::vector<std::pair<int32_t, int32_t>> t(static_cast<size_t>(sh.num_tiles));
  for (size_t k = 0; k < t.size(); ++k) t[k] = {tiles[2 * k], tiles[2 * k + 1]};
  std::stable_sort(t.begin(), t.end(), [&](const auto& a, const auto& b) { return nb_of(a.first) < nb_of(b.first); });
  for (size_t k = 0; k < t.size(); ++k) {
    tiles[2 * k] = t[k].first;
    tiles[2 * k + 1] = t[k].second;
  }
  int32_t tile = 0, sample = 0;
  for (NanoBatchRange& r : out) {
    r.tile_begin = tile;
    while (tile < sh.num_tiles && tiles[2 * tile] < r.seq_end) ++tile;
    r.tile_end = tile;
    r.sample_begin = sample;
    while (sample < sh.num_sampled && sample_rows[sample] < r.token_end) ++sample;
    r.sample_end = sample;
  }
  NF_CHECK(tile == sh.num_tiles && sample == sh.num_sampled)
      << "nano-batch split left tiles (" << tile << " of " << sh.num_tiles << ") or sampled rows (" << sample << " of "
      << sh.num_sampled << ") unassigned: sample rows must be in token order";
  return out;
}

std::vector<NanoBatchRange> CudaPlanStaging::split(const CudaPlanShape& shape,
                                                   const std::vector<std::pair<int32_t, int32_t>>& fractions,
                                                   bool at_decode) {
  const CudaPlanLayout& L = layout_;
  return split_nano_batches(at<int32_t>(host_, L.q_start), at<int32_t>(host_, L.tiles),
                            at<int32_t>(host_, L.sample_rows), shape, fractions, at_decode);
}

int32_t decode_graph_seq_bucket(int32_t num_seqs, int32_t cap) {
  if (num_seqs <= 0 || num_seqs > cap) return 0;
  int32_t b = 1;
  while (b < num_seqs && b < 128) b *= 2;
  if (b < num_seqs) b = (num_seqs + 63) / 64 * 64;
  return std::min(b, cap);
}

int32_t decode_graph_kv_bucket(int32_t max_decode_kv) {
  int32_t b = 256;
  while (b < max_decode_kv && b < (int32_t{1} << 30)) b *= 2;
  return b;
}

bool CudaPlanStaging::pad_decode(CudaPlanShape& sh, int32_t B, int32_t kv_bucket, int32_t scratch_page) {
  const CudaPlanLayout& L = layout_;
  const int32_t n = sh.num_seqs;
  if (n <= 0 || sh.num_tokens != n || sh.num_decode != n || sh.num_tiles != 0) return false;
  if (B < n || B > L.max_seqs || B > L.max_tokens || B > L.max_sampled) return false;
  if (sh.num_sampled > B || sh.num_deferred > B || kv_bucket < sh.max_decode_kv || scratch_page < 0) return false;
  int32_t* q_start = at<int32_t>(host_, L.q_start);
  int32_t* page_start = at<int32_t>(host_, L.page_start);
  const int32_t pages = page_start[n];
  if (static_cast<int64_t>(pages) + (B - n) > L.max_pages) return false;
  int32_t* ids = at<int32_t>(host_, L.token_ids);
  int32_t* pos = at<int32_t>(host_, L.positions);
  int32_t* kv = at<int32_t>(host_, L.kv_len);
  int32_t* page_ids = at<int32_t>(host_, L.page_ids);
  for (int32_t i = n; i < B; ++i) {
    ids[i] = 0;
    pos[i] = 0;
    kv[i] = 1;
    q_start[i + 1] = i + 1;
    page_ids[pages + (i - n)] = scratch_page;
    page_start[i + 1] = pages + (i - n) + 1;
  }
  int32_t* rows = at<int32_t>(host_, L.sample_rows);
  for (int32_t j = sh.num_sampled; j < B; ++j) rows[j] = j;
  int32_t* pairs = at<int32_t>(host_, L.deferred);
  for (int32_t j = sh.num_deferred; j < B; ++j) {
    pairs[2 * j] = L.max_tokens;  // the dump row
    pairs[2 * j + 1] = 0;
  }
  sh.sum_decode_kv += B - n;
  sh.num_tokens = sh.num_seqs = sh.num_decode = sh.num_sampled = sh.num_deferred = B;
  sh.max_decode_kv = sh.max_kv = kv_bucket;
  sh.used_bytes = L.page_ids + static_cast<size_t>(pages + (B - n)) * 4;
  return true;
}

void CudaPlanStaging::upload(void* device, const CudaPlanShape& shape, cudaStream_t stream) const {
  NF_CUDA_CHECK(cudaMemcpyAsync(device, host_, shape.used_bytes, cudaMemcpyHostToDevice, stream))
      << "plan upload of " << shape.used_bytes << " bytes";
}

}  // namespace nanoflow
#endif  // NANOFLOW_HAVE_CUDA
