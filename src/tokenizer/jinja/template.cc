#include "tokenizer/jinja/template.h"

#include "interpreter.h"
#include "lexer.h"
#include "parser.h"

namespace nanoflow::jinja {

struct Template::Impl {
  Body body;
  Limits limits;
};

Template::Template() : impl_(std::make_unique<Impl>()) {}
Template::~Template() = default;

std::shared_ptr<const Template> Template::compile(const std::string& source, const Limits& limits) {
  std::shared_ptr<Template> t(new Template());
  t->impl_->limits = limits;
  t->impl_->body = parse_template(tokenize(source), limits.max_nesting);
  return t;
}

std::string Template::render(const DictData& context) const {
  Interpreter in(impl_->limits);
  Scope root;
  root.vars = context.items;
  std::string out;
  in.exec(impl_->body, root, out);
  return out;
}

}  // namespace nanoflow::jinja
