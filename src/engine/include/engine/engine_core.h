// The Engine implementation: an engine thread that plans, launches and post-processes iterations
// (DESIGN.md §3-4), in front of an Executor. Built by Engine::create (model path) or, for tests and
// other backends, from parts.
#pragma once
#include <memory>

#include "engine/executor.h"
#include "nanoflow/engine.h"

namespace nanoflow::engine {

// `model` (may be null when `executor` does not need one) is owned by the engine and outlives the
// executor. The executor's vocabulary must match the tokenizer's ids.
std::unique_ptr<Engine> make_engine(std::unique_ptr<Model> model, std::unique_ptr<Executor> executor,
                                    std::unique_ptr<Tokenizer> tokenizer, const ModelConfig& model_config,
                                    const EngineConfig& config);

}  // namespace nanoflow::engine
