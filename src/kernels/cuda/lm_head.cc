// Final norm + LM head on sampled rows: rms_norm with a row gather, then a cuBLASLt GEMM with f32
// output (lm_head.h).
#include "kernels/cuda/lm_head.h"

#include "check_util.h"
#include "kernels/cuda/norm.h"

namespace nanoflow::cuda {

void final_norm_lm_head(GemmRunner& gemm, const LmHeadParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.num_sampled >= 0) << "num_sampled " << p.num_sampled;
  if (p.num_sampled == 0) return;
  NF_CHECK_PTR(p.sample_rows);
  NF_CHECK_PTR(p.normed);
  NF_CHECK_PTR(p.logits);
  NF_CHECK_PTR(p.lm_head);
  RmsNormParams n;
  n.x = p.hidden;
  n.weight = p.norm_weight;
  n.out = p.normed;
  n.row_index = p.sample_rows;
  n.rows = p.num_sampled;
  n.hidden = p.hidden_size;
  n.eps = p.eps;
  rms_norm(n, stream);
  GemmParams g;
  g.x = p.normed;
  g.w = p.lm_head;
  g.y = p.logits;
  g.m = p.num_sampled;
  g.n = p.vocab;
  g.k = p.hidden_size;
  g.out_f32 = true;
  g.sm_count_target = p.sm_count_target;
  gemm.run(g, stream);
}

}  // namespace nanoflow::cuda
