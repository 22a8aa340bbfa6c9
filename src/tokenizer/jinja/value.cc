#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "unicode.h"

namespace nanoflow::jinja {

// By content: the same literal may have a different address in each translation unit.
bool ListData::is_iterator() const {
  return view && (std::strcmp(view, kGeneratorView) == 0 || std::strcmp(view, kReverseIterView) == 0);
}

const Value* DictData::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void DictData::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

namespace {
int checked_depth(int deepest_child) {
  const int d = deepest_child + 1;
  if (d > kMaxValueDepth)
    throw Error(ErrorKind::kResource, "chat template: value nested deeper than " + std::to_string(kMaxValueDepth));
  return d;
}
}  // namespace

int Value::depth() const {
  switch (kind_) {
    case Kind::kList: return list().depth;
    case Kind::kDict: return dict().depth;
    case Kind::kNamespace: {
      int d = 0;
      for (const auto& kv : namespace_data().items) d = std::max(d, kv.second.depth());
      return d + 1;
    }
    default: return 0;
  }
}

Value Value::list(std::vector<Value> items, bool is_tuple, const char* view) {
  int deepest = 0;
  for (const auto& it : items) deepest = std::max(deepest, it.depth());
  Value v;
  v.kind_ = Kind::kList;
  v.obj_ = std::make_shared<ListData>(ListData{std::move(items), is_tuple, checked_depth(deepest), view, {}});
  return v;
}

Value Value::pending_generator(std::string error) {
  ListData d;
  d.view = kGeneratorView;
  d.pending_error = std::move(error);
  Value v;
  v.kind_ = Kind::kList;
  v.obj_ = std::make_shared<ListData>(std::move(d));
  return v;
}

Value Value::dict(DictData d) {
  int deepest = 0;
  for (const auto& kv : d.items) deepest = std::max(deepest, kv.second.depth());
  d.depth = checked_depth(deepest);
  Value v;
  v.kind_ = Kind::kDict;
  v.obj_ = std::make_shared<DictData>(std::move(d));
  return v;
}

Value Value::make_namespace(DictData d) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.obj_ = std::make_shared<DictData>(std::move(d));
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  // The pointer is stored type-erased; callable_fn() restores the type (kind_ says which).
  v.obj_ = std::const_pointer_cast<Callable>(std::move(fn));
  return v;
}

double Value::as_float() const {
  if (kind_ == Kind::kFloat) return f_;
  return static_cast<double>(as_int());
}

const ListData& Value::list() const { return *static_cast<const ListData*>(obj_.get()); }
const DictData& Value::dict() const { return *static_cast<const DictData*>(obj_.get()); }
DictData& Value::namespace_data() const { return *static_cast<DictData*>(obj_.get()); }
std::shared_ptr<const Callable> Value::callable_fn() const {
  if (kind_ != Kind::kCallable) return nullptr;
  return std::static_pointer_cast<const Callable>(obj_);
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0.0;
    case Kind::kString: return !s_.empty();
    case Kind::kList: return list().is_iterator() || !list().items.empty();
    case Kind::kDict: return !dict().items.empty();
    case Kind::kNamespace:
    case Kind::kCallable: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return list().view ? list().view : list().is_tuple ? "tuple" : "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kCallable: return "function";
  }
  return "?";
}

namespace {
template <class J>
Value json_to_value(const J& j, int depth_left) {
  if (depth_left <= 0)
    throw Error(ErrorKind::kInvalidInput, "chat template: input JSON nested too deeply");
  switch (j.type()) {
    case nlohmann::detail::value_t::null: return Value::none();
    case nlohmann::detail::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::detail::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::detail::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(ErrorKind::kUnsupported, "chat template: integer beyond int64 in input");
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::detail::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::detail::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::detail::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(json_to_value(e, depth_left - 1));
      return Value::list(std::move(items));
    }
    case nlohmann::detail::value_t::object: {
      DictData d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d.items.emplace_back(it.key(), json_to_value(it.value(), depth_left - 1));
      return Value::dict(std::move(d));
    }
    default:
      throw Error(ErrorKind::kInvalidInput, "chat template: unsupported JSON value (binary/discarded)");
  }
}

// Python repr() of a str: single quotes unless the text has ' and no ", escapes for
// non-printable characters. Printability follows Python for ASCII and Latin-1 and for the common
// format/space characters; rarer unassigned code points print as-is (documented approximation).
bool py_printable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp >= 0x80 && cp <= 0xA0) return false;
  if (cp == 0xAD || cp == 0x1680 || cp == 0x180E || cp == 0xFEFF) return false;
  if (cp >= 0x2000 && cp <= 0x200F) return false;
  if (cp >= 0x2028 && cp <= 0x202F) return false;
  if (cp >= 0x205F && cp <= 0x206F) return false;
  if (cp == 0x3000) return false;
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  if (cp >= 0xE000 && cp <= 0xF8FF) return false;  // private use
  if (cp >= 0xFFF0 && cp <= 0xFFFB) return false;
  if (cp == 0xFFFE || cp == 0xFFFF) return false;
  if (cp >= 0xF0000) return false;  // planes 15-16: private use
  return true;
}

std::string py_str_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  size_t len;
  char buf[16];
  for (size_t i = 0; i < s.size(); i += len) {
    const uint32_t cp = utf8_decode(s, i, &len);
    if (len == 1 && cp >= 0x80) {  // malformed byte (Python would hold a surrogate escape)
      std::snprintf(buf, sizeof buf, "\\udc%02x", cp);
      out += buf;
      continue;
    }
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (py_printable(cp)) {
      out.append(s, i, len);
    } else {
      if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    }
  }
  out += quote;
  return out;
}

std::string repr_impl(const Value& v, bool top);

std::string container_repr(const Value& v) {
  std::string out;
  if (v.is_list()) {
    const ListData& l = v.list();
    if (l.is_iterator())  // Python prints "<generator object ... at 0x...>": nothing to match
      throw Error(ErrorKind::kUnsupported,
                  std::string("chat template: printing a ") + l.view + " (add |list) is not supported");
    if (l.view) out += std::string(l.view) + "(";
    out += l.is_tuple ? '(' : '[';
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (i) out += ", ";
      out += repr_impl(l.items[i], false);
    }
    if (l.is_tuple && l.items.size() == 1) out += ',';
    out += l.is_tuple ? ')' : ']';
    if (l.view) out += ')';
    return out;
  }
  const DictData& d = v.kind() == Value::Kind::kNamespace ? v.namespace_data() : v.dict();
  out += '{';
  bool first = true;
  for (const auto& [k, e] : d.items) {
    if (!first) out += ", ";
    first = false;
    out += py_str_repr(k);
    out += ": ";
    out += repr_impl(e, false);
  }
  out += '}';
  return out;
}

std::string repr_impl(const Value& v, bool top) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return top ? "" : "Undefined";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return py_float_repr(v.as_float());
    case Value::Kind::kString: return top ? v.str() : py_str_repr(v.str());
    case Value::Kind::kList:
    case Value::Kind::kDict: return container_repr(v);
    case Value::Kind::kNamespace: return "<Namespace " + container_repr(v) + ">";
    case Value::Kind::kCallable:
      throw Error(ErrorKind::kUnsupported, "chat template: cannot print function " + v.callable_fn()->name());
  }
  return {};
}
}  // namespace

Value Value::from_json(const nlohmann::json& j, int max_depth) { return json_to_value(j, max_depth); }
Value Value::from_json(const nlohmann::ordered_json& j, int max_depth) { return json_to_value(j, max_depth); }

std::string py_str(const Value& v) { return repr_impl(v, true); }
std::string py_repr(const Value& v) {
  if (v.is_undefined()) return "Undefined";
  return repr_impl(v, false);
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form "d.ddde±x", then laid out as Python's repr:
  // positional for -4 <= exponent < 16, else scientific with a two-digit exponent at least.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  std::string sign;
  if (!mant.empty() && mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out = digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return sign + out + ebuf;
}

namespace {
void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_impl(std::string& out, const Value& v, const JsonStyle& st, int level) {
  if (out.size() > st.max_bytes)
    throw Error(ErrorKind::kResource, "chat template: tojson output exceeds " + std::to_string(st.max_bytes) + " bytes");
  auto newline = [&](int lvl) {
    out += '\n';
    for (int i = 0; i < lvl; ++i) out += st.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += py_float_repr(d);
      return;
    }
    case Value::Kind::kString: json_string(out, v.str()); return;
    case Value::Kind::kList: {
      const auto& items = v.list().items;
      if (v.list().view)
        throw Error(ErrorKind::kInvalidInput,
                    std::string("chat template: tojson: object of type ") + v.list().view + " is not JSON serializable");
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += st.item_sep;
        if (st.pretty) newline(level + 1);
        json_impl(out, items[i], st, level + 1);
      }
      if (st.pretty) newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict().items) items.push_back(&kv);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += st.item_sep;
        if (st.pretty) newline(level + 1);
        json_string(out, items[i]->first);
        out += st.key_sep;
        json_impl(out, items[i]->second, st, level + 1);
      }
      if (st.pretty) newline(level);
      out += '}';
      return;
    }
    default:
      throw Error(ErrorKind::kInvalidInput,
                  "chat template: tojson: object of type " + v.type_name() + " is not JSON serializable");
  }
}

int sign_of(double x) { return x < 0 ? -1 : (x > 0 ? 1 : 0); }
}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  json_impl(out, v, style, 0);
  if (out.size() > style.max_bytes)
    throw Error(ErrorKind::kResource, "chat template: tojson output exceeds " + std::to_string(style.max_bytes) + " bytes");
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat)
      return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      const auto& x = a.list();
      const auto& y = b.list();
      if (x.is_iterator() || y.is_iterator()) return &x == &y;  // Python compares iterators by identity
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!values_equal(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.dict();
      const auto& y = b.dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* o = y.find(k);
        if (!o || !values_equal(v, *o)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.namespace_data() == &b.namespace_data();
    case Value::Kind::kCallable: return a.callable_fn() == b.callable_fn();
    default: return false;
  }
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat)
      return sign_of(a.as_float() - b.as_float());
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  // UTF-8 byte order equals code-point order, which is what Python compares.
  if (a.is_string() && b.is_string()) return a.str() < b.str() ? -1 : (a.str() > b.str() ? 1 : 0);
  if (a.is_list() && b.is_list() && a.list().is_tuple == b.list().is_tuple) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw Error(ErrorKind::kInvalidInput, "chat template: comparison not supported between instances of '" +
                                            a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace nanoflow::jinja
