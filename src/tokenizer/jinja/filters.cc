// Jinja filters and tests, as Jinja 3.1 defines them (transformers replaces `tojson` with
// json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <limits>
#include <cstdlib>

#include "interpreter.h"
#include "parser.h"
#include "unicode.h"

namespace nanoflow::jinja {
namespace {

std::optional<std::string> opt_string(Interpreter& in, const Value* v, int line, const char* what) {
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) in.fail(line, std::string(what) + " must be a string, not " + v->type_name());
  return v->str();
}

bool opt_bool(const Value* v, bool dflt) { return v ? v->truthy() : dflt; }

// Non-ASCII code points as \uXXXX (surrogate pairs above U+FFFF), for ensure_ascii=True.
std::string ascii_escape(const std::string& s) {
  std::string out;
  size_t len;
  char buf[16];
  for (size_t i = 0; i < s.size(); i += len) {
    uint32_t cp = utf8_decode(s, i, &len);
    if (cp < 0x80 && len == 1) {
      out += static_cast<char>(cp);
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    }
    out += buf;
  }
  return out;
}

// Python str.replace (an empty `old` inserts `new` around every code point).
std::string py_replace(const std::string& s, const std::string& old, const std::string& neu, int64_t count,
                       size_t max_bytes) {
  std::string out;
  auto check = [&]() {
    if (out.size() > max_bytes)
      throw Error(ErrorKind::kResource, "chat template: replace() result exceeds the output limit");
  };
  if (count < 0) count = INT64_MAX;
  if (old.empty()) {
    const std::vector<size_t> off = cp_offsets(s);
    for (size_t k = 0; k + 1 < off.size(); ++k) {
      if (count > 0) {
        out += neu;
        --count;
      }
      out.append(s, off[k], off[k + 1] - off[k]);
      check();
    }
    if (count > 0) out += neu;
    check();
    return out;
  }
  size_t pos = 0;
  while (count > 0) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += neu;
    check();
    pos = hit + old.size();
    --count;
  }
  out.append(s, pos);
  check();
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python int(str): optional whitespace and sign, decimal digits with single underscores between.
std::optional<int64_t> parse_py_int(const std::string& raw) {
  const std::string s = py_strip(raw, StripSide::kBoth, std::nullopt);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i >= s.size()) return std::nullopt;
  std::string digits;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') digits += s[i];
    else if (s[i] == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') continue;
    else return std::nullopt;
  }
  errno = 0;
  const long long v = std::strtoll(digits.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return neg ? -v : v;
}

std::optional<double> parse_py_float(const std::string& raw) {
  const std::string s = py_strip(raw, StripSide::kBoth, std::nullopt);
  if (s.empty() || s.find('_') != std::string::npos) return std::nullopt;
  const std::string low = py_lower(s);
  for (const char* inf : {"inf", "+inf", "infinity", "+infinity"})
    if (low == inf) return HUGE_VAL;
  for (const char* inf : {"-inf", "-infinity"})
    if (low == inf) return -HUGE_VAL;
  if (low == "nan" || low == "+nan" || low == "-nan") return std::nan("");
  if (low.find_first_not_of("0123456789+-.e") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

// Jinja's select/reject/map are generators guarded by `if value:`: a false input gives an empty
// generator, a true one that cannot be iterated fails only when the generator is consumed.
std::optional<Value> lazy_generator_source(const Value& v) {
  if (!v.truthy()) return Value::list({}, false, kGeneratorView);
  if (v.is_list() && !v.list().pending_error.empty()) return Value::pending_generator(v.list().pending_error);
  if (v.is_string() || v.is_list() || v.is_dict() || v.is_undefined()) return std::nullopt;
  return Value::pending_generator("'" + v.type_name() + "' object is not iterable");
}

}  // namespace

bool Interpreter::apply_test(const std::string& name, const Value& v, Args& args, int line) {
  using K = Value::Kind;
  auto other = [&]() -> const Value& {
    const Value* o = args.get(0, name == "divisibleby" ? "num" : (name == "in" ? "seq" : "other"));
    if (!o) fail(line, "test '" + name + "' needs an argument");
    return *o;
  };
  bool r;
  if (name == "defined") r = !v.is_undefined();
  else if (name == "undefined") r = v.is_undefined();
  else if (name == "none") r = v.is_none();
  else if (name == "boolean") r = v.kind() == K::kBool;
  else if (name == "true") r = v.kind() == K::kBool && v.as_bool();
  else if (name == "false") r = v.kind() == K::kBool && !v.as_bool();
  else if (name == "integer") r = v.kind() == K::kInt;
  else if (name == "float") r = v.kind() == K::kFloat;
  else if (name == "number") r = v.is_number();
  else if (name == "string") r = v.is_string();
  else if (name == "mapping") r = v.is_dict();
  else if (name == "iterable")
    r = v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  else if (name == "sequence")  // len() and [] : not dict views nor iterators
    r = v.is_string() || (v.is_list() && !v.list().view) || v.is_dict() || v.is_undefined();
  else if (name == "callable") r = v.kind() == K::kCallable;
  else if (name == "lower" || name == "upper") {
    // Python str.islower()/isupper(): some cased character, and none of the other case.
    const std::string s = to_str(v, line), lo = py_lower(s), up = py_upper(s);
    const bool has_cased = lo != up;
    r = has_cased && (name == "lower" ? s == lo : s == up);
  }
  else if (name == "escaped") r = false;
  else if (name == "odd" || name == "even") {
    if (v.is_undefined()) fail_undefined(v, line);
    // Python: value % 2 == 1 (or == 0), which floats answer too.
    r = values_equal(binary("%", v, Value(int64_t{2}), line), Value(int64_t{name == "odd" ? 1 : 0}));
  } else if (name == "divisibleby") {
    r = values_equal(binary("%", v, other(), line), Value(int64_t{0}));
  } else if (name == "eq" || name == "equalto" || name == "==") r = compare("==", v, other(), line);
  else if (name == "ne" || name == "!=") r = compare("!=", v, other(), line);
  else if (name == "lt" || name == "lessthan" || name == "<") r = compare("<", v, other(), line);
  else if (name == "le" || name == "<=") r = compare("<=", v, other(), line);
  else if (name == "gt" || name == "greaterthan" || name == ">") r = compare(">", v, other(), line);
  else if (name == "ge" || name == ">=") r = compare(">=", v, other(), line);
  else if (name == "in") r = compare("in", v, other(), line);
  else if (name == "sameas") {
    // Python identity is only predictable for None, True/False and Undefined.
    const Value& o = other();
    const bool singleton = v.is_none() || v.kind() == K::kBool || o.is_none() || o.kind() == K::kBool;
    if (!singleton) fail(line, "'sameas' is only supported against none/true/false", ErrorKind::kUnsupported);
    r = v.kind() == o.kind() && (v.kind() != K::kBool || v.as_bool() == o.as_bool());
  } else {
    fail(line, "test '" + name + "' is not supported", ErrorKind::kUnsupported);
  }
  args.done(name);
  return r;
}

namespace {
// Jinja's attribute getter for map/selectattr/join(attribute=): "a.b.0" → item lookups.
Value attr_path(Interpreter& in, const Value& item, const std::string& path, int line) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    cur = in.getitem(cur, numeric ? Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))) : Value(part), line);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}
}  // namespace

Value Interpreter::apply_filter(const std::string& name, const Value& v, Args& args, Scope& scope, int line) {
  Value r;
  if (name == "trim") {
    r = Value(py_strip(to_str(v, line), StripSide::kBoth, opt_string(*this, args.get(0, "chars"), line, "chars")));
  } else if (name == "length" || name == "count") {
    r = Value(static_cast<int64_t>(length(v, line)));
  } else if (name == "tojson") {
    const bool ensure_ascii = opt_bool(args.get(0, "ensure_ascii"), false);
    const Value* indent = args.get(1, "indent");
    const Value* seps = args.get(2, "separators");
    const bool sort_keys = opt_bool(args.get(3, "sort_keys"), false);
    JsonStyle st;
    st.sort_keys = sort_keys;
    st.max_bytes = limits_.max_output_bytes;
    if (indent && !indent->is_none()) {
      st.pretty = true;
      st.item_sep = ",";
      if (indent->is_integral()) {
        if (indent->as_int() > static_cast<int64_t>(limits_.max_output_bytes)) fail(line, "tojson: indent too large", ErrorKind::kResource);
        st.indent = std::string(static_cast<size_t>(std::max<int64_t>(indent->as_int(), 0)), ' ');
      }
      else if (indent->is_string()) st.indent = indent->str();
      else fail(line, "tojson: indent must be an int or a string");
    }
    if (seps && !seps->is_none()) {
      if (!seps->is_list() || seps->list().items.size() != 2 || !seps->list().items[0].is_string() ||
          !seps->list().items[1].is_string())
        fail(line, "tojson: separators must be a pair of strings");
      st.item_sep = seps->list().items[0].str();
      st.key_sep = seps->list().items[1].str();
    }
    if (v.is_undefined()) fail_undefined(v, line);
    std::string j = to_json(v, st);
    if (ensure_ascii) j = ascii_escape(j);
    r = make_string(std::move(j), line);
  } else if (name == "upper") {
    r = Value(py_upper(to_str(v, line)));
  } else if (name == "lower") {
    r = Value(py_lower(to_str(v, line)));
  } else if (name == "capitalize") {
    r = Value(py_capitalize(to_str(v, line)));
  } else if (name == "default" || name == "d") {
    const Value* dflt = args.get(0, "default_value");
    const bool boolean = opt_bool(args.get(1, "boolean"), false);
    const bool use_default = v.is_undefined() || (boolean && !v.truthy());
    r = use_default ? (dflt ? *dflt : Value("")) : v;
  } else if (name == "items") {
    if (v.is_undefined()) {
      r = Value::list({}, false, kGeneratorView);
    } else if (!v.is_dict()) {
      r = Value::pending_generator("can only get item pairs from a mapping");
    } else {
      std::vector<Value> pairs;
      for (const auto& [k, val] : v.dict().items) pairs.push_back(Value::list({Value(k), val}, true));
      r = make_list(std::move(pairs), line, false, kGeneratorView);
    }
  } else if (name == "join") {
    const Value* sep = args.get(0, "d");
    const Value* attr = args.get(1, "attribute");
    const std::string d = sep ? to_str(*sep, line) : "";
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v, line)) {
      if (!first) out += d;
      first = false;
      out += to_str(attr && !attr->is_none() ? attr_path(*this, item, to_str(*attr, line), line) : item, line);
      if (out.size() > limits_.max_output_bytes) make_string(std::move(out), line);
    }
    r = make_string(std::move(out), line);
  } else if (name == "first" || name == "last") {
    if (name == "last" && v.is_list() && v.list().is_iterator())
      fail(line, std::string("'") + v.list().view + "' object is not reversible");
    std::vector<Value> items = iterate(v, line);
    if (items.empty()) r = Value::undefined("no " + name + " item, sequence was empty");
    else r = name == "first" ? items.front() : items.back();
  } else if (name == "string") {
    r = Value(to_str(v, line));
  } else if (name == "int") {
    const Value* dflt = args.get(0, "default");
    const Value* base = args.get(1, "base");
    if (base && !(base->is_integral() && base->as_int() == 10)) fail(line, "int(): only base 10 is supported", ErrorKind::kUnsupported);
    const Value fallback = dflt ? *dflt : Value(int64_t{0});
    if (v.is_undefined()) fail_undefined(v, line);  // int(Undefined) raises in Jinja
    if (v.is_integral()) {
      r = Value(v.as_int());
    } else if (v.kind() == Value::Kind::kFloat) {
      const double d = v.as_float();
      r = (std::isfinite(d) && std::fabs(d) < 9.2e18) ? Value(static_cast<int64_t>(d)) : fallback;
    } else if (v.is_string()) {
      if (auto i = parse_py_int(v.str())) {
        r = Value(*i);
      } else if (auto f = parse_py_float(v.str()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) {
        r = Value(static_cast<int64_t>(*f));
      } else {
        r = fallback;
      }
    } else {
      r = fallback;
    }
  } else if (name == "float") {
    const Value* dflt = args.get(0, "default");
    const Value fallback = dflt ? *dflt : Value(0.0);
    if (v.is_undefined()) fail_undefined(v, line);
    if (v.is_number()) r = Value(v.as_float());
    else if (v.is_string()) {
      auto f = parse_py_float(v.str());
      r = f ? Value(*f) : fallback;
    } else {
      r = fallback;
    }
  } else if (name == "abs") {
    if (v.is_undefined()) fail_undefined(v, line);
    if (!v.is_number()) fail(line, "bad operand type for abs(): '" + v.type_name() + "'");
    if (v.kind() == Value::Kind::kFloat) r = Value(std::fabs(v.as_float()));
    else if (v.as_int() == std::numeric_limits<int64_t>::min()) fail(line, "integer overflow", ErrorKind::kUnsupported);
    else r = Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  } else if (name == "list") {
    r = make_list(iterate(v, line), line);
  } else if (name == "replace") {
    const Value* old = args.get(0, "old");
    const Value* neu = args.get(1, "new");
    const Value* cnt = args.get(2, "count");
    if (!old || !neu) fail(line, "replace needs old and new");
    const int64_t count = (cnt && !cnt->is_none()) ? (cnt->is_integral() ? cnt->as_int() : (fail(line, "replace: count must be an int"), 0)) : -1;
    r = make_string(py_replace(to_str(v, line), to_str(*old, line), to_str(*neu, line), count, limits_.max_output_bytes), line);
  } else if (name == "safe") {
    r = v.is_string() ? v : Value(to_str(v, line));
  } else if (name == "escape" || name == "e") {
    r = Value(html_escape(to_str(v, line)));
  } else if ((name == "map" || name == "select" || name == "reject" || name == "selectattr" ||
              name == "rejectattr") && lazy_generator_source(v)) {
    for (size_t k = 0; k < args.pos.size(); ++k) args.get(k, "");
    for (auto& kv : args.kw) args.get(SIZE_MAX, kv.first.c_str());
    r = *lazy_generator_source(v);
  } else if (name == "map") {
    const Value* attr = nullptr;
    const Value* dflt = nullptr;
    for (auto& kv : args.kw)
      if (kv.first == "attribute") attr = args.get(SIZE_MAX, "attribute");
    std::vector<Value> out;
    if (attr) {
      dflt = args.get(SIZE_MAX, "default");
      for (const Value& item : iterate(v, line)) {
        Value x = attr_path(*this, item, to_str(*attr, line), line);
        if (x.is_undefined() && dflt) x = *dflt;
        out.push_back(std::move(x));
      }
    } else {
      if (args.pos.empty() || !args.pos[0].is_string()) fail(line, "map needs a filter name or attribute=");
      const std::string filter = args.pos[0].str();
      if (!is_known_filter(filter)) fail(line, "filter '" + filter + "' is not supported", ErrorKind::kUnsupported);
      Args rest;
      rest.pos.assign(args.pos.begin() + 1, args.pos.end());
      rest.kw = args.kw;
      for (size_t k = 0; k < args.pos.size(); ++k) args.get(k, "");
      for (auto& kv : args.kw) args.get(SIZE_MAX, kv.first.c_str());
      for (const Value& item : iterate(v, line)) {
        Args a = rest;
        out.push_back(apply_filter(filter, item, a, scope, line));
      }
    }
    r = make_list(std::move(out), line, false, kGeneratorView);
  } else if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "select" || name == "selectattr";
    size_t k = 0;
    std::string attr;
    if (by_attr) {
      if (args.pos.empty() || !args.pos[0].is_string()) fail(line, name + " needs an attribute name");
      attr = args.pos[0].str();
      k = 1;
    }
    std::string test;
    if (args.pos.size() > k) {
      if (!args.pos[k].is_string()) fail(line, name + ": test name must be a string");
      test = args.pos[k].str();
      if (!is_known_test(test)) fail(line, "test '" + test + "' is not supported", ErrorKind::kUnsupported);
      ++k;
    }
    Args rest;
    rest.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(std::min(k, args.pos.size())), args.pos.end());
    rest.kw = args.kw;
    for (size_t i = 0; i < args.pos.size(); ++i) args.get(i, "");
    for (auto& kv : args.kw) args.get(SIZE_MAX, kv.first.c_str());
    std::vector<Value> out;
    for (const Value& item : iterate(v, line)) {
      step(line);
      const Value x = by_attr ? attr_path(*this, item, attr, line) : item;
      bool pass;
      if (test.empty()) {
        pass = x.truthy();
      } else {
        Args a = rest;
        pass = apply_test(test, x, a, line);
      }
      if (pass == keep_if) out.push_back(item);
    }
    r = make_list(std::move(out), line, false, kGeneratorView);
  } else if (name == "reverse") {
    if (v.is_string()) {
      const std::vector<size_t> off = cp_offsets(v.str());
      std::string s;
      for (size_t k = off.size() - 1; k > 0; --k) s.append(v.str(), off[k - 1], off[k] - off[k - 1]);
      r = Value(std::move(s));
    } else {
      // reversed(x) for sequences (an iterator); an iterator itself becomes a reversed list.
      const bool from_iterator = v.is_list() && v.list().is_iterator();
      if (v.is_none() || v.is_number()) fail(line, "argument to reverse must be a sequence");
      std::vector<Value> items = iterate(v, line);
      std::reverse(items.begin(), items.end());
      r = make_list(std::move(items), line, false, from_iterator ? nullptr : kReverseIterView);
    }
  } else if (name == "indent") {
    if (v.is_undefined()) fail_undefined(v, line);
    if (!v.is_string()) fail(line, "indent: unsupported operand type(s) for +=: '" + v.type_name() + "' and 'str'");
    const Value* width = args.get(0, "width");
    const bool first = opt_bool(args.get(1, "first"), false);
    const bool blank = opt_bool(args.get(2, "blank"), false);
    std::string ind = "    ";
    if (width) {
      if (width->is_string()) ind = width->str();
      else if (width->is_integral()) {
        if (width->as_int() > static_cast<int64_t>(limits_.max_output_bytes)) fail(line, "indent: width too large", ErrorKind::kResource);
        ind = std::string(static_cast<size_t>(std::max<int64_t>(width->as_int(), 0)), ' ');
      }
      else fail(line, "indent: width must be an int or a string");
    }
    // Jinja appends a newline so that splitlines keeps a trailing empty line, then re-joins.
    const std::vector<std::string> lines = py_splitlines(to_str(v, line) + "\n");
    std::string out;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k > 0) {
        out += '\n';
        if (blank || !lines[k].empty()) out += ind;
      }
      out += lines[k];
      if (out.size() > limits_.max_output_bytes) make_string(std::move(out), line);
    }
    if (first) out = ind + out;
    r = make_string(std::move(out), line);
  } else {
    fail(line, "filter '" + name + "' is not supported", ErrorKind::kUnsupported);
  }
  args.done(name);
  return r;
}

}  // namespace nanoflow::jinja
