#include "interpreter.h"

#include <cmath>
#include <limits>
#include <optional>

#include "unicode.h"

namespace nanoflow::jinja {

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent)
    for (auto it = s->vars.rbegin(); it != s->vars.rend(); ++it)
      if (it->first == name) return &it->second;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& kv : vars)
    if (kv.first == name) {
      kv.second = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

const Value* Args::get(size_t idx, const char* name) {
  used_pos_.resize(pos.size());
  used_kw_.resize(kw.size());
  if (idx < pos.size()) {
    used_pos_[idx] = true;
    return &pos[idx];
  }
  for (size_t k = 0; k < kw.size(); ++k)
    if (kw[k].first == name) {
      used_kw_[k] = true;
      return &kw[k].second;
    }
  return nullptr;
}

void Args::done(const std::string& fn) const {
  for (size_t k = 0; k < pos.size(); ++k)
    if (k >= used_pos_.size() || !used_pos_[k])
      throw Error(ErrorKind::kInvalidInput, "chat template: " + fn + "() got too many positional arguments");
  for (size_t k = 0; k < kw.size(); ++k)
    if (k >= used_kw_.size() || !used_kw_[k])
      throw Error(ErrorKind::kInvalidInput,
                  "chat template: " + fn + "() got an unexpected keyword argument '" + kw[k].first + "'");
}

void Interpreter::fail(int line, const std::string& msg, ErrorKind kind) const {
  throw Error(kind, "chat template: line " + std::to_string(line) + ": " + msg);
}

void Interpreter::fail_undefined(const Value& u, int line) const {
  fail(line, u.str().empty() ? "value is undefined" : u.str());
}

void Interpreter::step(int line) {
  if (++steps_ > limits_.max_steps)
    fail(line, "template exceeded " + std::to_string(limits_.max_steps) + " evaluation steps", ErrorKind::kResource);
}

void Interpreter::emit(std::string& out, const std::string& text, int line) {
  if (out.size() + text.size() > limits_.max_output_bytes)
    fail(line, "output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes", ErrorKind::kResource);
  out += text;
}

Value Interpreter::make_string(std::string s, int line) {
  if (s.size() > limits_.max_output_bytes)
    fail(line, "string value exceeds " + std::to_string(limits_.max_output_bytes) + " bytes", ErrorKind::kResource);
  return Value(std::move(s));
}

Value Interpreter::make_list(std::vector<Value> items, int line, bool tuple, const char* view) {
  if (items.size() > limits_.max_list_items)
    fail(line, "list exceeds " + std::to_string(limits_.max_list_items) + " items", ErrorKind::kResource);
  return Value::list(std::move(items), tuple, view);
}

std::string Interpreter::to_str(const Value& v, int line) {
  if (v.kind() == Value::Kind::kCallable) fail(line, "cannot print a function", ErrorKind::kUnsupported);
  return py_str(v);
}

// ---- statements -----------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body, Scope& scope, std::string& out) {
  for (const NodePtr& np : body) {
    const Node& n = *np;
    step(n.line);
    switch (n.kind) {
      case Node::Kind::kText: emit(out, n.text, n.line); break;
      case Node::Kind::kOutput: emit(out, to_str(eval(*n.expr, scope), n.line), n.line); break;
      case Node::Kind::kIf: {
        const Body* chosen = &n.else_body;
        for (size_t i = 0; i < n.conds.size(); ++i)
          if (eval(*n.conds[i], scope).truthy()) {
            chosen = &n.bodies[i];
            break;
          }
        // `if` opens no frame: a `set` inside it is visible after it.
        const Flow f = exec(*chosen, scope, out);
        if (f != Flow::kNormal) return f;
        break;
      }
      case Node::Kind::kFor: {
        const Flow f = exec_for(n, scope, out);
        if (f != Flow::kNormal) return f;
        break;
      }
      case Node::Kind::kSet: assign(n.target, eval(*n.expr, scope), scope, n.line); break;
      case Node::Kind::kSetBlock: {
        std::string captured;
        const Flow f = exec(n.body, scope, captured);
        assign(n.target, make_string(std::move(captured), n.line), scope, n.line);
        if (f != Flow::kNormal) return f;
        break;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
      case Node::Kind::kScope: {
        const Flow f = exec(n.body, scope, out);
        if (f != Flow::kNormal) return f;
        break;
      }
    }
  }
  return Flow::kNormal;
}

namespace {
bool holds_namespace(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNamespace: return true;
    case Value::Kind::kList:
      for (const auto& e : v.list().items)
        if (holds_namespace(e)) return true;
      return false;
    case Value::Kind::kDict:
      for (const auto& kv : v.dict().items)
        if (holds_namespace(kv.second)) return true;
      return false;
    default: return false;
  }
}
}  // namespace

void Interpreter::assign(const Target& t, const Value& v, Scope& scope, int line) {
  if (!t.attr.empty()) {
    const Value* ns = scope.lookup(t.names[0]);
    if (!ns || ns->kind() != Value::Kind::kNamespace)
      fail(line, "cannot assign attribute on non-namespace object '" + t.names[0] + "'");
    if (!t.attr.empty() && t.attr[0] == '_')
      fail(line, "cannot store underscore-prefixed attribute '" + t.attr + "' on a namespace");
    // A namespace holding a namespace could form a cycle (ns.a = ns): refused, it is never needed.
    if (holds_namespace(v)) fail(line, "storing a namespace inside a namespace is not supported", ErrorKind::kUnsupported);
    ns->namespace_data().set(t.attr, v);
    return;
  }
  if (!t.unpack) {
    scope.set(t.names[0], v);
    return;
  }
  const std::vector<Value> items = iterate(v, line);
  if (items.size() != t.names.size())
    fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(t.names.size()) + " names");
  for (size_t i = 0; i < items.size(); ++i) scope.set(t.names[i], items[i]);
}

Interpreter::Flow Interpreter::exec_for(const Node& n, Scope& scope, std::string& out) {
  std::vector<Value> items = iterate(eval(*n.expr, scope), n.line);
  if (n.cond) {  // `for x in xs if cond`: filtered before the loop, so loop.length counts the kept
    std::vector<Value> kept;
    for (const Value& item : items) {
      step(n.line);
      Scope probe{&scope, {}};
      assign(n.target, item, probe, n.line);
      if (eval(*n.cond, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(n.else_body, scope, out);
  const auto len = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < len; ++i) {
    step(n.line);
    Scope frame{&scope, {}};
    assign(n.target, items[i], frame, n.line);
    if (!n.uses_loop) {
      if (exec(n.body, frame, out) == Flow::kBreak) break;
      continue;
    }
    auto cycle = std::make_shared<LoopCycle>();
    cycle->index0 = i;
    DictData loop;
    loop.items = {
        {"index", Value(i + 1)},
        {"index0", Value(i)},
        {"revindex", Value(len - i)},
        {"revindex0", Value(len - i - 1)},
        {"first", Value(i == 0)},
        {"last", Value(i == len - 1)},
        {"length", Value(len)},
        {"depth", Value(int64_t{1})},
        {"depth0", Value(int64_t{0})},
        {"previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item")},
        {"nextitem", i + 1 < len ? items[i + 1] : Value::undefined("there is no next item")},
        {"cycle", Value::callable(std::move(cycle))},
    };
    frame.set("loop", Value::dict(std::move(loop)));
    const Flow f = exec(n.body, frame, out);
    if (f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

// ---- expressions ------------------------------------------------------------------------------

std::vector<Value> Interpreter::iterate(const Value& v, int line) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};  // Jinja's Undefined iterates as empty
    case Value::Kind::kList:
      if (!v.list().pending_error.empty()) fail(line, v.list().pending_error);
      return v.list().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      size_t len;
      for (size_t i = 0; i < s.size(); i += len) {
        utf8_decode(s, i, &len);
        chars.emplace_back(s.substr(i, len));
      }
      return chars;
    }
    default: fail(line, "'" + v.type_name() + "' object is not iterable");
  }
}

size_t Interpreter::length(const Value& v, int line) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return cp_length(v.str());
    case Value::Kind::kList:
      if (v.list().is_iterator()) fail(line, std::string("object of type '") + v.list().view + "' has no len()");
      return v.list().items.size();
    case Value::Kind::kDict: return v.dict().items.size();
    default: fail(line, "object of type '" + v.type_name() + "' has no len()");
  }
}

namespace {
bool is_dict_method(const std::string& n) {
  static const char* kNames[] = {"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem",
                                 "setdefault", "update", "values"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}
bool is_str_method(const std::string& n) {
  static const char* kNames[] = {
      "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
      "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
      "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
      "lstrip", "maketrans", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
      "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
      "title", "translate", "upper", "zfill"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}
bool is_list_method(const std::string& n) {
  static const char* kNames[] = {"append", "clear", "copy", "count", "extend", "index", "insert", "pop",
                                 "remove", "reverse", "sort"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}
}  // namespace

Value Interpreter::getattr(const Value& obj, const std::string& name, int line) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: fail_undefined(obj, line);
    case Value::Kind::kDict: {
      // Python attribute lookup finds dict methods before Jinja falls back to the item.
      if (is_dict_method(name))
        fail(line, "dict method '" + name + "' used as a value (only calls are supported)", ErrorKind::kUnsupported);
      if (const Value* v = obj.dict().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Value::Kind::kNamespace:
      if (const Value* v = obj.namespace_data().find(name)) return *v;
      return Value::undefined("'Namespace' object has no attribute '" + name + "'");
    case Value::Kind::kString:
      if (is_str_method(name))
        fail(line, "str method '" + name + "' used as a value (only calls are supported)", ErrorKind::kUnsupported);
      return Value::undefined("'str object' has no attribute '" + name + "'");
    case Value::Kind::kList:
      if (is_list_method(name))
        fail(line, "list method '" + name + "' used as a value (only calls are supported)", ErrorKind::kUnsupported);
      return Value::undefined("'list object' has no attribute '" + name + "'");
    default: return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key, int line) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: fail_undefined(obj, line);
    case Value::Kind::kDict:
      if (key.is_string()) {
        if (const Value* v = obj.dict().find(key.str())) return *v;
        return Value::undefined("'dict object' has no attribute '" + key.str() + "'");
      }
      return Value::undefined("'dict object' has no attribute " + py_repr(key));
    case Value::Kind::kNamespace:
      if (key.is_string()) return getattr(obj, key.str(), line);
      return Value::undefined("'Namespace' object has no attribute " + py_repr(key));
    case Value::Kind::kList:
    case Value::Kind::kString: {
      if (obj.is_list() && obj.list().view) fail(line, "'" + obj.type_name() + "' object is not subscriptable");
      if (key.is_string()) return getattr(obj, key.str(), line);
      if (!key.is_integral()) return Value::undefined(obj.type_name() + " object has no element " + py_repr(key));
      int64_t idx = key.as_int();
      if (obj.is_list()) {
        const auto n = static_cast<int64_t>(obj.list().items.size());
        if (idx < 0) idx += n;
        if (idx < 0 || idx >= n) return Value::undefined(obj.type_name() + " object has no element " + py_repr(key));
        return obj.list().items[static_cast<size_t>(idx)];
      }
      const std::vector<size_t> off = cp_offsets(obj.str());
      const auto n = static_cast<int64_t>(off.size() - 1);
      if (idx < 0) idx += n;
      if (idx < 0 || idx >= n) return Value::undefined("str object has no element " + py_repr(key));
      return Value(obj.str().substr(off[idx], off[idx + 1] - off[idx]));
    }
    default: return Value::undefined("'" + obj.type_name() + " object' has no attribute " + py_repr(key));
  }
}

Value Interpreter::slice(const Value& obj, const Value& start, const Value& stop, const Value& stepv, int line) {
  if (obj.is_undefined()) fail_undefined(obj, line);
  if ((!obj.is_list() && !obj.is_string()) || (obj.is_list() && obj.list().view))
    fail(line, "'" + obj.type_name() + "' object is not subscriptable");
  auto as_index = [&](const Value& v) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_integral()) fail(line, "slice indices must be integers or None");
    return v.as_int();
  };
  const std::optional<int64_t> o_start = as_index(start), o_stop = as_index(stop), o_step = as_index(stepv);
  const int64_t step = o_step.value_or(1);
  if (step == 0) fail(line, "slice step cannot be zero");
  std::vector<size_t> off;
  int64_t n;
  if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list().items.size());
  } else {
    off = cp_offsets(obj.str());
    n = static_cast<int64_t>(off.size() - 1);
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  const int64_t lo = adjust(o_start, step < 0 ? n - 1 : 0);
  const int64_t hi = adjust(o_stop, step < 0 ? -1 : n);
  std::vector<int64_t> idx;
  if (step > 0)
    for (int64_t i = lo; i < hi; i += step) idx.push_back(i);
  else
    for (int64_t i = lo; i > hi; i += step) idx.push_back(i);
  if (obj.is_list()) {
    std::vector<Value> items;
    items.reserve(idx.size());
    for (int64_t i : idx) items.push_back(obj.list().items[static_cast<size_t>(i)]);
    return make_list(std::move(items), line, obj.list().is_tuple);
  }
  if (step == 1) return Value(obj.str().substr(off[lo > hi ? 0 : lo], lo < hi ? off[hi] - off[lo] : 0));
  std::string s;
  for (int64_t i : idx) s.append(obj.str(), off[i], off[i + 1] - off[i]);
  return Value(std::move(s));
}

Args Interpreter::eval_args(const Expr& e, Scope& scope) {
  Args args;
  for (const auto& a : e.args) args.pos.push_back(eval(*a, scope));
  for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v, scope));
  return args;
}

Value Interpreter::eval_call(const Expr& e, Scope& scope) {
  const Expr& callee = *e.a;
  if (callee.kind == Expr::Kind::kName) {
    Args args = eval_args(e, scope);
    return call_global(callee.name, args, e.line);
  }
  // callee is a Getattr (the parser allows nothing else)
  Value obj = eval(*callee.a, scope);
  Args args = eval_args(e, scope);
  return call_method(obj, callee.name, args, e.line);
}

Value Interpreter::eval(const Expr& e, Scope& scope) {
  step(e.line);
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.value;
    case Expr::Kind::kName: {
      if (const Value* v = scope.lookup(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return make_list(std::move(items), e.line, e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (!k.is_string()) fail(e.line, "dict literal keys must be strings here", ErrorKind::kUnsupported);
        d.set(k.str(), eval(*e.args[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case Expr::Kind::kGetattr: return getattr(eval(*e.a, scope), e.name, e.line);
    case Expr::Kind::kGetitem: {
      Value obj = eval(*e.a, scope);
      return getitem(obj, eval(*e.b, scope), e.line);
    }
    case Expr::Kind::kSlice: {
      Value obj = eval(*e.a, scope);
      Value start = e.b ? eval(*e.b, scope) : Value::none();
      Value stop = e.c ? eval(*e.c, scope) : Value::none();
      Value st = e.d ? eval(*e.d, scope) : Value::none();
      return slice(obj, start, stop, st, e.line);
    }
    case Expr::Kind::kCall: return eval_call(e, scope);
    case Expr::Kind::kFilter: {
      Value v = eval(*e.a, scope);
      Args args = eval_args(e, scope);
      return apply_filter(e.name, v, args, scope, e.line);
    }
    case Expr::Kind::kTest: {
      Value v = eval(*e.a, scope);
      Args args = eval_args(e, scope);
      const bool r = apply_test(e.name, v, args, e.line);
      return Value(e.negated ? !r : r);
    }
    case Expr::Kind::kUnary: {
      Value v = eval(*e.a, scope);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) fail_undefined(v, e.line);
      if (!v.is_number()) fail(e.line, "bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.kind() == Value::Kind::kFloat ? v : Value(v.as_int());
      if (v.kind() == Value::Kind::kFloat) return Value(-v.as_float());
      if (v.as_int() == std::numeric_limits<int64_t>::min()) fail(e.line, "integer overflow", ErrorKind::kUnsupported);
      return Value(-v.as_int());
    }
    case Expr::Kind::kBinary: {
      if (e.name == "and") {
        Value l = eval(*e.a, scope);
        return l.truthy() ? eval(*e.b, scope) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.a, scope);
        return l.truthy() ? l : eval(*e.b, scope);
      }
      Value l = eval(*e.a, scope);
      Value r = eval(*e.b, scope);
      return binary(e.name, l, r, e.line);
    }
    case Expr::Kind::kCompare: {
      Value left = eval(*e.a, scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i], scope);
        if (!compare(e.ops[i], left, right, e.line)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::kCond: {
      if (eval(*e.b, scope).truthy()) return eval(*e.a, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  fail(e.line, "unknown expression", ErrorKind::kInternal);
}

bool Interpreter::compare(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "==") return values_equal(a, b);
  if (op == "!=") return !values_equal(a, b);
  if (op == "in" || op == "not in") {
    bool found = false;
    switch (b.kind()) {
      case Value::Kind::kUndefined: found = false; break;
      case Value::Kind::kString:
        if (a.is_undefined()) fail_undefined(a, line);
        if (!a.is_string()) fail(line, "'in <string>' requires string as left operand, not " + a.type_name());
        found = b.str().find(a.str()) != std::string::npos;
        break;
      case Value::Kind::kList:
        for (const auto& item : b.list().items)
          if (values_equal(a, item)) {
            found = true;
            break;
          }
        break;
      case Value::Kind::kDict:
        if (a.is_list() || a.is_dict() || a.kind() == Value::Kind::kNamespace)
          fail(line, "unhashable type: '" + a.type_name() + "'");
        found = a.is_string() && b.dict().find(a.str()) != nullptr;
        break;
      default: fail(line, "argument of type '" + b.type_name() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  if (a.is_undefined()) fail_undefined(a, line);
  if (b.is_undefined()) fail_undefined(b, line);
  if ((a.kind() == Value::Kind::kFloat && std::isnan(a.as_float())) ||
      (b.kind() == Value::Kind::kFloat && std::isnan(b.as_float())))
    return false;
  int c;
  try {
    c = compare_values(a, b);
  } catch (const Error& err) {
    fail(line, std::string(err.what()).substr(15) + " (operator " + op + ")");
  }
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

namespace {
double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  else if (m == 0) m = std::copysign(0.0, b);
  return m;
}
}  // namespace

Value Interpreter::binary(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "~") return make_string(to_str(a, line) + to_str(b, line), line);
  if (a.is_undefined()) fail_undefined(a, line);
  if (b.is_undefined()) fail_undefined(b, line);
  auto type_error = [&]() {
    fail(line, "unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  auto overflow = [&]() { fail(line, "integer overflow", ErrorKind::kUnsupported); };
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > limits_.max_output_bytes)
        fail(line, "string value exceeds " + std::to_string(limits_.max_output_bytes) + " bytes", ErrorKind::kResource);
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.list().is_tuple == b.list().is_tuple && !a.list().view && !b.list().view) {
      if (a.list().items.size() + b.list().items.size() > limits_.max_list_items)
        fail(line, "list exceeds " + std::to_string(limits_.max_list_items) + " items", ErrorKind::kResource);
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return make_list(std::move(items), line, a.list().is_tuple);
    }
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = (a.is_string() || a.is_list()) ? a : b;
    const Value& cnt = (a.is_string() || a.is_list()) ? b : a;
    if (!cnt.is_integral() || (seq.is_list() && seq.list().view)) type_error();
    const int64_t n = std::max<int64_t>(0, cnt.as_int());
    if (seq.is_string()) {
      if (n > 0 && seq.str().size() > limits_.max_output_bytes / static_cast<uint64_t>(n))
        fail(line, "string value too large", ErrorKind::kResource);
      std::string s;
      s.reserve(seq.str().size() * n);
      for (int64_t i = 0; i < n; ++i) s += seq.str();
      return Value(std::move(s));
    }
    const auto& src = seq.list().items;
    if (n > 0 && src.size() > limits_.max_list_items / static_cast<uint64_t>(n))
      fail(line, "list exceeds " + std::to_string(limits_.max_list_items) + " items", ErrorKind::kResource);
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), src.begin(), src.end());
    return make_list(std::move(items), line, seq.list().is_tuple);
  }
  if (op == "%" && a.is_string()) fail(line, "printf-style string formatting ('%') is not supported", ErrorKind::kUnsupported);
  if (!a.is_number() || !b.is_number()) type_error();
  const bool floats = a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
  if (op == "/") {
    if (b.as_float() == 0) fail(line, "division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (floats) {
    const double x = a.as_float(), y = b.as_float();
    if (op == "+") return Value(x + y);
    if (op == "-") return Value(x - y);
    if (op == "*") return Value(x * y);
    if (op == "//" || op == "%") {
      if (y == 0) fail(line, "float division by zero");
      const double m = py_fmod(x, y);
      if (op == "%") return Value(m);
      double div = (x - m) / y;
      if (div != 0) {
        double fl = std::floor(div);
        if (div - fl > 0.5) fl += 1;
        return Value(fl);
      }
      return Value(std::copysign(0.0, x / y));
    }
    if (op == "**") {
      if (x == 0 && y < 0) fail(line, "0.0 cannot be raised to a negative power");
      if (x < 0 && y != std::floor(y)) fail(line, "negative number raised to a fractional power", ErrorKind::kUnsupported);
      return Value(std::pow(x, y));
    }
  } else {
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) overflow();
      return Value(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) overflow();
      return Value(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) overflow();
      return Value(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail(line, "integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) {
        if (x == 0) fail(line, "0.0 cannot be raised to a negative power");
        return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      int64_t result = 1, base = x, e = y;
      while (e > 0) {
        if (e & 1)
          if (__builtin_mul_overflow(result, base, &result)) overflow();
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value(result);
    }
  }
  type_error();
  return {};
}

}  // namespace nanoflow::jinja
