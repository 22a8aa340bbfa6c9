// A compiled Jinja template (the subset chat templates use; see tokenizer/chat_template.h for the
// environment it mirrors). Compile once, render many times, from any thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tokenizer/jinja/value.h"

namespace nanoflow::jinja {

// Bounds that keep a hostile template from hanging or exhausting memory.
struct Limits {
  size_t max_output_bytes = 64u << 20;  // rendered text, and any string value built on the way
  size_t max_list_items = 1u << 20;     // any list built by the template (range(), +, *)
  uint64_t max_steps = 2'000'000;       // evaluated nodes + loop iterations per render (a few s)
  int max_nesting = 256;                // template nesting (blocks, expressions) at compile time
  int max_input_depth = 64;             // nesting depth of JSON given to render
};

class Template {
 public:
  // Throws Error(kBadFile) for syntax errors, Error(kUnsupported) for constructs outside the
  // supported subset; both name the line.
  static std::shared_ptr<const Template> compile(const std::string& source, const Limits& limits = {});

  // Renders with `context` as the template's variables. Throws Error(kInvalidInput) when the
  // template raises or cannot evaluate on this input, Error(kResource) beyond the limits.
  std::string render(const DictData& context) const;

  ~Template();
  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;

 private:
  Template();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nanoflow::jinja
