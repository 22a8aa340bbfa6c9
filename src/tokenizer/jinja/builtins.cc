// Global functions (Jinja's range/dict/namespace plus transformers' raise_exception and
// strftime_now) and the Python methods templates call on strings and dicts.
#include <ctime>

#include "interpreter.h"
#include "unicode.h"

namespace nanoflow::jinja {
namespace {

int64_t int_arg(Interpreter& in, const Value& v, int line, const char* fn) {
  if (!v.is_integral()) in.fail(line, std::string(fn) + "(): expected an integer, got " + v.type_name());
  return v.as_int();
}

const std::string& str_arg(Interpreter& in, const Value* v, int line, const std::string& fn) {
  if (!v) in.fail(line, fn + "() missing a required argument");
  if (!v->is_string()) in.fail(line, fn + "() argument must be str, not " + v->type_name());
  return v->str();
}

std::optional<std::string> opt_str_arg(Interpreter& in, const Value* v, int line, const std::string& fn) {
  if (!v || v->is_none()) return std::nullopt;
  return str_arg(in, v, line, fn);
}

void check_ns_key(Interpreter& in, const std::string& k, int line) {
  if (!k.empty() && k[0] == '_')
    in.fail(line, "cannot store underscore-prefixed attribute '" + k + "' on a namespace");
}

}  // namespace

Value Interpreter::call_global(const std::string& name, Args& args, int line) {
  if (name == "raise_exception") {
    const Value* msg = args.get(0, "message");
    // The template's own verdict on the input (e.g. roles must alternate): a client error.
    fail(line, "template raised: " + (msg ? to_str(*msg, line) : std::string()), ErrorKind::kInvalidInput);
  }
  Value r;
  if (name == "strftime_now") {
    const std::string& fmt = str_arg(*this, args.get(0, "format"), line, name);
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    r = Value(std::string(buf, n));
  } else if (name == "namespace" || name == "dict") {
    DictData d;
    for (size_t k = 0; k < args.pos.size(); ++k) {
      const Value* init = args.get(k, "");
      if (!init->is_dict()) fail(line, name + "() positional argument must be a mapping");
      for (const auto& [key, val] : init->dict().items) d.set(key, val);
    }
    for (const auto& kv : args.kw) {
      args.get(SIZE_MAX, kv.first.c_str());
      d.set(kv.first, kv.second);
    }
    if (name == "namespace") {
      for (const auto& kv : d.items) check_ns_key(*this, kv.first, line);
      r = Value::make_namespace(std::move(d));
    } else {
      r = Value::dict(std::move(d));
    }
  } else if (name == "range") {
    int64_t start = 0, stop = 0, stepv = 1;
    if (args.pos.size() == 1) {
      stop = int_arg(*this, *args.get(0, ""), line, "range");
    } else if (args.pos.size() == 2 || args.pos.size() == 3) {
      start = int_arg(*this, *args.get(0, ""), line, "range");
      stop = int_arg(*this, *args.get(1, ""), line, "range");
      if (args.pos.size() == 3) stepv = int_arg(*this, *args.get(2, ""), line, "range");
    } else {
      fail(line, "range expected 1 to 3 arguments");
    }
    if (stepv == 0) fail(line, "range() arg 3 must not be zero");
    // Count first (in wide arithmetic) so a huge range is refused before allocating.
    const __int128 span = stepv > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
    const __int128 mag = stepv > 0 ? stepv : -static_cast<__int128>(stepv);
    const __int128 count = span <= 0 ? 0 : (span + mag - 1) / mag;
    if (count > static_cast<__int128>(limits_.max_list_items))
      fail(line, "range() exceeds " + std::to_string(limits_.max_list_items) + " items", ErrorKind::kResource);
    std::vector<Value> items;
    items.reserve(static_cast<size_t>(count));
    for (__int128 k = 0; k < count; ++k) items.emplace_back(static_cast<int64_t>(start + k * stepv));
    r = make_list(std::move(items), line);
  } else {
    fail(line, "unknown function '" + name + "'", ErrorKind::kUnsupported);
  }
  args.done(name);
  return r;
}

Value Interpreter::call_method(const Value& obj, const std::string& name, Args& args, int line) {
  if (obj.is_undefined()) fail_undefined(obj, line);
  Value r;
  if (obj.is_dict()) {
    const DictData& d = obj.dict();
    if (name == "items" || name == "keys" || name == "values") {
      std::vector<Value> out;
      for (const auto& [k, v] : d.items) {
        if (name == "items") out.push_back(Value::list({Value(k), v}, true));
        else if (name == "keys") out.emplace_back(k);
        else out.push_back(v);
      }
      r = make_list(std::move(out), line, false, name == "items" ? "dict_items" : name == "keys" ? "dict_keys" : "dict_values");
    } else if (name == "get") {
      const Value* key = args.get(0, "key");
      const Value* dflt = args.get(1, "default");
      if (!key) fail(line, "get() missing the key");
      const Value* found = key->is_string() ? d.find(key->str()) : nullptr;
      r = found ? *found : (dflt ? *dflt : Value::none());
    } else if (const Value* fn = d.find(name); fn && fn->kind() == Value::Kind::kCallable) {
      const auto* cycle = dynamic_cast<const LoopCycle*>(fn->callable_fn().get());
      if (!cycle) fail(line, "cannot call " + fn->callable_fn()->name(), ErrorKind::kUnsupported);
      if (args.pos.empty()) fail(line, "no items for cycling given");
      const size_t k = static_cast<size_t>(cycle->index0) % args.pos.size();
      for (size_t i = 0; i < args.pos.size(); ++i) args.get(i, "");
      r = args.pos[k];
    } else {
      fail(line, "'dict object' has no attribute '" + name + "'");
    }
    args.done(name);
    return r;
  }
  if (obj.is_list() && !obj.list().view && name == "count") {  // list.count(x)
    const Value* x = args.get(0, "value");
    if (!x) fail(line, "count() takes exactly one argument");
    int64_t n = 0;
    for (const auto& e : obj.list().items) n += values_equal(e, *x) ? 1 : 0;
    args.done(name);
    return Value(n);
  }
  if (!obj.is_string()) fail(line, "'" + obj.type_name() + " object' has no method '" + name + "'");
  const std::string& s = obj.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const StripSide side = name == "strip" ? StripSide::kBoth : name == "lstrip" ? StripSide::kLeft : StripSide::kRight;
    r = Value(py_strip(s, side, opt_str_arg(*this, args.get(0, "chars"), line, name)));
  } else if (name == "startswith" || name == "endswith") {
    const Value* p = args.get(0, "prefix");
    if (!p) fail(line, name + "() takes at least 1 argument");
    std::vector<std::string> cands;
    if (p->is_string()) {
      cands.push_back(p->str());
    } else if (p->is_list() && p->list().is_tuple) {
      for (const auto& e : p->list().items) cands.push_back(str_arg(*this, &e, line, name));
    } else {
      fail(line, name + " first arg must be str or a tuple of str, not " + p->type_name());
    }
    bool hit = false;
    for (const auto& c : cands) {
      if (c.size() > s.size()) continue;
      if (name == "startswith" ? s.compare(0, c.size(), c) == 0 : s.compare(s.size() - c.size(), c.size(), c) == 0)
        hit = true;
    }
    r = Value(hit);
  } else if (name == "split" || name == "rsplit") {
    const std::optional<std::string> sep = opt_str_arg(*this, args.get(0, "sep"), line, name);
    const Value* mx = args.get(1, "maxsplit");
    const int64_t maxsplit = mx ? int_arg(*this, *mx, line, "split") : -1;
    std::vector<Value> parts;
    for (auto& p : py_split(s, sep, maxsplit, name == "rsplit")) parts.emplace_back(std::move(p));
    r = make_list(std::move(parts), line);
  } else if (name == "upper") {
    r = Value(py_upper(s));
  } else if (name == "lower") {
    r = Value(py_lower(s));
  } else if (name == "capitalize") {
    r = Value(py_capitalize(s));
  } else if (name == "replace") {
    const std::string& old = str_arg(*this, args.get(0, "old"), line, name);
    const std::string& neu = str_arg(*this, args.get(1, "new"), line, name);
    const Value* cnt = args.get(2, "count");
    const int64_t count = cnt ? int_arg(*this, *cnt, line, "replace") : -1;
    // Same semantics as the filter: route through it.
    Args fa;
    fa.pos = {Value(old), Value(neu), Value(count)};
    Scope none;
    r = apply_filter("replace", obj, fa, none, line);
  } else if (name == "find" || name == "rfind" || name == "count") {
    const std::string& sub = str_arg(*this, args.get(0, "sub"), line, name);
    if (name == "count") {
      int64_t n = 0;
      if (sub.empty()) {
        n = static_cast<int64_t>(cp_length(s)) + 1;
      } else {
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      }
      r = Value(n);
    } else {
      const size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
      r = Value(p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(cp_length(std::string_view(s).substr(0, p))));
    }
  } else if (name == "join") {
    const Value* it = args.get(0, "iterable");
    if (!it) fail(line, "join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& e : iterate(*it, line)) {
      if (!e.is_string()) fail(line, "sequence item: expected str instance, " + e.type_name() + " found");
      if (!first) out += s;
      first = false;
      out += e.str();
      if (out.size() > limits_.max_output_bytes) make_string(std::move(out), line);
    }
    r = make_string(std::move(out), line);
  } else if (name == "splitlines") {
    const Value* keep = args.get(0, "keepends");
    if (keep && keep->truthy()) fail(line, "splitlines(keepends=True) is not supported", ErrorKind::kUnsupported);
    std::vector<Value> lines;
    for (auto& l : py_splitlines(s)) lines.emplace_back(std::move(l));
    r = make_list(std::move(lines), line);
  } else {
    fail(line, "'str object' has no method '" + name + "'");
  }
  args.done(name);
  return r;
}

}  // namespace nanoflow::jinja
