// `nanoflow schedule`: writes a nano-batch pipeline schedule as JSON (engine/schedule_kinds.h) for
// `--schedule FILE` of serve and bench throughput/serving.
//   nanoflow schedule --kind pipeline --layers 32 --gemm-sms 88 --attn-sms 32 --remainder attn
//       --iterations decode -o /tmp/pipeline.json
// H100 and H200 (132 SMs) split into 15 equal groups of 8 SMs and 12 over, so the partitions' SM
// counts add up to at most 120 (plus the 12 with --remainder attn).
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "core/error.h"
#include "engine/schedule_kinds.h"

namespace nanoflow::cli {
namespace {

struct ScheduleOptions {
  std::string kind;
  int layers = 0;
  int gemm_sms = 96, attn_sms = 24, gemm_sm_target = 0, share = 512;
  std::string remainder = "none";
  std::string iterations = "mixed";
  std::string output;
};

int run_schedule(const ScheduleOptions& o) {
  engine::ScheduleSpec sp;
  sp.kind = engine::schedule_kind_from_name(o.kind);
  sp.gemm_sms = o.gemm_sms;
  sp.attn_sms = o.attn_sms;
  sp.gemm_sm_target = o.gemm_sm_target;
  sp.share = o.share;
  NF_CHECK_INPUT(o.remainder == "none" || o.remainder == "attn") << "--remainder '" << o.remainder << "' (none or attn)";
  sp.attn_remainder = o.remainder == "attn";
  sp.iterations = engine::schedule_iterations_from_name(o.iterations);
  const engine::PipelineSchedule s = engine::make_schedule(sp, o.layers);
  engine::write_schedule_file(s, o.output);
  std::printf("%s: %s, %zu nodes\n", o.output.c_str(), s.name.c_str(), s.nodes.size());
  return 0;
}

NF_REGISTER_COMMAND(schedule_cmd, "schedule", "write a nano-batch pipeline schedule (JSON) for --schedule",
                    [](CLI::App* sub) -> std::function<int()> {
                      auto o = std::make_shared<ScheduleOptions>();
                      sub->add_option("--kind", o->kind, "sequential | decode-overlap | decode-overlap-phased | pipeline")
                          ->required();
                      sub->add_option("--layers", o->layers, "the model's layer count")->required();
                      sub->add_option("--gemm-sms", o->gemm_sms, "the GEMM stream's SMs: 0 (whole GPU) or a multiple of 8");
                      sub->add_option("--attn-sms", o->attn_sms, "the attention stream's SMs: 0 or a multiple of 8");
                      sub->add_option("--gemm-sm-target", o->gemm_sm_target,
                                      "> 0: the GEMM stream's GEMMs target this many SMs (SM_COUNT_TARGET)");
                      sub->add_option("--share", o->share, "pipeline: nano-batch 0's share of the tokens, in 1/1024ths");
                      sub->add_option("--remainder", o->remainder,
                                      "none | attn: the attention partition also takes the SMs left over from the "
                                      "equal groups (GEMM streams never do, DESIGN.md)");
                      sub->add_option("--iterations", o->iterations,
                                      "mixed | decode | all: the iterations the schedule runs (the others run the "
                                      "sequential forward)");
                      sub->add_option("-o,--output", o->output, "the JSON file to write")->required();
                      return [o] { return run_schedule(*o); };
                    });

}  // namespace
}  // namespace nanoflow::cli
