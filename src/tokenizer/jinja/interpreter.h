// Evaluates a parsed template: statements write to an output string, expressions produce Values
// with Python/Jinja semantics (ImmutableSandboxedEnvironment, default Undefined). Every step is
// counted and every string/list it builds is size-checked against Limits.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "ast.h"
#include "core/error.h"
#include "tokenizer/jinja/template.h"
#include "tokenizer/jinja/value.h"

namespace nanoflow::jinja {

// Variables of one frame: the template's top level, or one iteration of a for loop (Jinja gives
// each iteration a fresh frame; `set` inside it does not leak out, hence namespace()).
struct Scope {
  const Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* lookup(const std::string& name) const;
  void set(const std::string& name, Value v);
};

// Evaluated call arguments, read by position or keyword as Python binds them.
class Args {
 public:
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument at position `idx` or named `name` (nullptr if absent); marks it used.
  const Value* get(size_t idx, const char* name);
  // Throws if an argument was not consumed by get() (Python's "unexpected argument").
  void done(const std::string& fn) const;

 private:
  std::vector<bool> used_pos_;
  std::vector<bool> used_kw_;
};

class Interpreter {
 public:
  Interpreter(const Limits& limits) : limits_(limits) {}

  enum class Flow { kNormal, kBreak, kContinue };
  Flow exec(const Body& body, Scope& scope, std::string& out);
  Value eval(const Expr& e, Scope& scope);

  // Python/Jinja operations, exposed for the filters and methods.
  Value getattr(const Value& obj, const std::string& name, int line);
  Value getitem(const Value& obj, const Value& key, int line);
  std::vector<Value> iterate(const Value& v, int line);  // for loops, list(), join...
  size_t length(const Value& v, int line);
  std::string to_str(const Value& v, int line);           // str(v); Undefined -> ""
  Value make_string(std::string s, int line);             // size-checked
  Value make_list(std::vector<Value> items, int line, bool tuple = false, const char* view = nullptr);
  bool apply_test(const std::string& name, const Value& v, Args& args, int line);
  Value apply_filter(const std::string& name, const Value& v, Args& args, Scope& scope, int line);
  Value call_global(const std::string& name, Args& args, int line);
  Value call_method(const Value& obj, const std::string& name, Args& args, int line);
  void step(int line);
  Value binary(const std::string& op, const Value& a, const Value& b, int line);

  [[noreturn]] void fail(int line, const std::string& msg, ErrorKind kind = ErrorKind::kInvalidInput) const;
  // Throws the "'x' is undefined" error that using an Undefined in an operation raises.
  [[noreturn]] void fail_undefined(const Value& u, int line) const;

  const Limits& limits() const { return limits_; }

 private:
  void emit(std::string& out, const std::string& text, int line);
  void assign(const Target& t, const Value& v, Scope& scope, int line);
  Flow exec_for(const Node& n, Scope& scope, std::string& out);
  bool compare(const std::string& op, const Value& a, const Value& b, int line);
  Value eval_call(const Expr& e, Scope& scope);
  Args eval_args(const Expr& e, Scope& scope);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);

  const Limits& limits_;
  uint64_t steps_ = 0;
};

}  // namespace nanoflow::jinja

namespace nanoflow::jinja {
// loop.cycle(a, b, ...) of one iteration: returns the argument at index0 % count.
struct LoopCycle : Callable {
  int64_t index0 = 0;
  std::string name() const override { return "loop.cycle"; }
};
}  // namespace nanoflow::jinja
