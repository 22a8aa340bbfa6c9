// The value type of the Jinja interpreter: Python's object model cut down to what chat templates
// see (JSON data, plus Jinja's Undefined, tuples, namespace() objects and callables).
//
// Strings are UTF-8 bytes; operations that Python defines on code points (len, indexing, slicing,
// iteration) decode on the fly (unicode.h). Lists and dicts are immutable once built (transformers
// renders in Jinja's ImmutableSandboxedEnvironment), so copies share them; only a namespace is
// mutable, with reference semantics as in Python.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanoflow::jinja {

class Value;

// Containers nest at most this deep (checked when built), so recursion over a value (printing,
// tojson, ==, destruction) stays bounded whatever a template does.
inline constexpr int kMaxValueDepth = 512;
inline constexpr const char* kGeneratorView = "generator";
inline constexpr const char* kReverseIterView = "list_reverseiterator";

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes how it prints: (1, 2) instead of [1, 2]
  int depth = 1;          // 1 + deepest item
  // Non-null for the results of dict.keys()/values()/items(): Python prints them as
  // dict_keys([...]) and json.dumps refuses them; otherwise they behave as lists here.
  // kGeneratorView / kReverseIterView: what Jinja's select/map/items/reverse filters return, a
  // lazy iterator: always true, no len(), not printable (Python prints an address), not reversible.
  const char* view = nullptr;
  bool is_iterator() const;
  // An iterator whose source could not be iterated: Jinja's generators fail only when consumed,
  // so the error waits here until something iterates this value.
  std::string pending_error;
};

// Insertion-ordered (Python dicts are); keys are strings (JSON objects, dict literals).
struct DictData {
  std::vector<std::pair<std::string, Value>> items;
  int depth = 1;  // 1 + deepest value (at construction; namespaces hold no namespaces)
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);  // replaces in place or appends
};

// Something a template can call that is a value: a builtin bound to state (loop.cycle).
// Global functions (raise_exception, namespace, ...) are resolved by name by the interpreter.
struct Callable {
  virtual ~Callable() = default;
  virtual std::string name() const = 0;
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict,
                              kNamespace, kCallable };

  Value() = default;  // Undefined
  static Value undefined(std::string hint);  // hint: why, for the error when it is used
  static Value none();
  explicit Value(bool b) : kind_(Kind::kBool), b_(b) {}
  explicit Value(int64_t i) : kind_(Kind::kInt), i_(i) {}
  explicit Value(int i) : kind_(Kind::kInt), i_(i) {}
  explicit Value(double f) : kind_(Kind::kFloat), f_(f) {}
  explicit Value(std::string s) : kind_(Kind::kString), s_(std::move(s)) {}
  explicit Value(const char* s) : kind_(Kind::kString), s_(s) {}
  static Value list(std::vector<Value> items, bool is_tuple = false, const char* view = nullptr);
  static Value dict(DictData d);
  // A Jinja generator over a source that cannot be iterated: true, errors when consumed.
  static Value pending_generator(std::string error);
  static Value make_namespace(DictData d);
  static Value callable(std::shared_ptr<const Callable> fn);

  // JSON → Value. Integers beyond int64 are refused (kUnsupported); nesting beyond max_depth is
  // refused (kInvalidInput), which keeps every later recursion over the value bounded.
  static Value from_json(const nlohmann::json& j, int max_depth);
  static Value from_json(const nlohmann::ordered_json& j, int max_depth);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  // Python's numbers.Number: bool, int, float.
  bool is_number() const { return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_integral() const { return kind_ == Kind::kBool || kind_ == Kind::kInt; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool or int
  double as_float() const;                                                    // any number
  const std::string& str() const { return s_; }  // the string (or an Undefined's hint)
  const ListData& list() const;
  const DictData& dict() const;             // dict
  DictData& namespace_data() const;         // namespace (mutable)
  std::shared_ptr<const Callable> callable_fn() const;

  int depth() const;                // container nesting: 0 for scalars
  bool truthy() const;              // Python bool(); Undefined is false
  std::string type_name() const;    // Python's type name, for messages: str, int, list, dict...

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  // ListData, DictData (dict or namespace) or Callable, by kind_. One pointer keeps Value small
  // (values are copied a lot); only a namespace is ever modified through it.
  std::shared_ptr<void> obj_;
};

// Python str(v) (what {{ v }} prints; Undefined prints as ""), and repr(v) (how items print
// inside a list or dict). Floats as Python's shortest round-trip repr.
std::string py_str(const Value& v);
std::string py_repr(const Value& v);
std::string py_float_repr(double d);

// Python json.dumps(v, ensure_ascii=False, indent=..., separators=..., sort_keys=...), which is
// transformers' `tojson`. indent: empty optional = None; a string is used as is (Python accepts
// an int n meaning n spaces: the caller turns it into a string).
struct JsonStyle {
  bool pretty = false;                // indent given
  std::string indent;                 // per level, when pretty
  std::string item_sep = ", ";        // Python's default: ", " (or "," when indent is given)
  std::string key_sep = ": ";
  bool sort_keys = false;
  size_t max_bytes = SIZE_MAX;        // Error(kResource) if the text would grow beyond this
};
std::string to_json(const Value& v, const JsonStyle& style);

// Python ==, and <, <=, >, >= (throw Error(kInvalidInput) for unorderable types, as Python's
// TypeError would).
bool values_equal(const Value& a, const Value& b);
int compare_values(const Value& a, const Value& b);  // -1, 0, 1

}  // namespace nanoflow::jinja
