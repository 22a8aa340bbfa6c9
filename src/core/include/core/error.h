// Errors with values: host code throws nanoflow::Error; checks print the values involved.
//   NF_CHECK(x > 0) << "while reading " << name;
//   NF_CHECK_EQ(a, b) << "context";
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace nanoflow {

// Error kinds let the server map an error to an HTTP status without parsing messages.
enum class ErrorKind {
  kInternal,      // a bug or a fault of ours (500)
  kInvalidInput,  // bad request data (400)
  kNotFound,      // unknown model/route (404)
  kBadFile,       // a model/tokenizer file that is malformed or inconsistent
  kUnsupported,   // valid but not supported by us
  kResource,      // out of memory / capacity
  kIo,            // operating-system I/O failure
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  explicit Error(const std::string& msg) : Error(ErrorKind::kInternal, msg) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
// clang 14 with libstdc++ 12 (the libFuzzer build, fuzz/) has no std::source_location: a stand-in
// with the two members used here.
struct SourceLocation {
  static constexpr SourceLocation current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) {
    return SourceLocation{file, line};
  }
  constexpr const char* file_name() const { return file_; }
  constexpr unsigned line() const { return line_; }
  const char* file_;
  unsigned line_;
};
#endif

// Collects a message and throws on destruction (end of the full expression).
class CheckFailure {
 public:
  CheckFailure(ErrorKind kind, const char* what, SourceLocation loc) : kind_(kind) {
    os_ << what;
    first_ = what[0] != '\0';
    file_ = loc.file_name();
    line_ = loc.line();
  }
  CheckFailure(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure() noexcept(false) {
    std::string file(file_);
    auto slash = file.find_last_of('/');
    if (slash != std::string::npos) file = file.substr(slash + 1);
    os_ << " [" << file << ":" << line_ << "]";
    throw Error(kind_, os_.str());
  }
  template <class T>
  CheckFailure& operator<<(const T& v) {
    if (first_) os_ << ": ";
    os_ << v;
    first_ = false;
    return *this;
  }

 private:
  ErrorKind kind_;
  std::ostringstream os_;
  const char* file_;
  unsigned line_;
  bool first_ = true;  // a ": " separates the check's text from the first streamed value
};

struct Comparison {
  bool ok;
  std::string message;
};
template <class A, class B, class Op>
Comparison compare(const A& a, const B& b, Op op, const char* expr) {
  if (op(a, b)) return {true, {}};
  std::ostringstream os;
  os << "check failed: " << expr << " (" << a << " vs " << b << ")";
  return {false, os.str()};
}
}  // namespace detail
}  // namespace nanoflow

// `if (ok) ; else stream` keeps the macro a single statement that accepts `<<`.
#define NF_CHECK_KIND(kind, cond)                                                                 \
  if (cond) {                                                                                     \
  } else                                                                                          \
    ::nanoflow::detail::CheckFailure(kind, "check failed: " #cond, ::nanoflow::detail::SourceLocation::current())
#define NF_CHECK(cond) NF_CHECK_KIND(::nanoflow::ErrorKind::kInternal, cond)
#define NF_CHECK_INPUT(cond) NF_CHECK_KIND(::nanoflow::ErrorKind::kInvalidInput, cond)
#define NF_CHECK_FILE(cond) NF_CHECK_KIND(::nanoflow::ErrorKind::kBadFile, cond)

// Each operand is evaluated once; the message (with both values) is built only on failure.
#define NF_CHECK_OP_(a, b, op)                                                                    \
  if (auto nf_cmp_ = ::nanoflow::detail::compare(                                                 \
          (a), (b), [](const auto& x, const auto& y) { return x op y; }, #a " " #op " " #b);       \
      nf_cmp_.ok) {                                                                               \
  } else                                                                                          \
    ::nanoflow::detail::CheckFailure(::nanoflow::ErrorKind::kInternal, nf_cmp_.message.c_str(),   \
                                     ::nanoflow::detail::SourceLocation::current())
#define NF_CHECK_EQ(a, b) NF_CHECK_OP_(a, b, ==)
#define NF_CHECK_NE(a, b) NF_CHECK_OP_(a, b, !=)
#define NF_CHECK_LT(a, b) NF_CHECK_OP_(a, b, <)
#define NF_CHECK_LE(a, b) NF_CHECK_OP_(a, b, <=)
#define NF_CHECK_GT(a, b) NF_CHECK_OP_(a, b, >)
#define NF_CHECK_GE(a, b) NF_CHECK_OP_(a, b, >=)

// Throws an Error of the given kind with a streamed message: NF_THROW(kBadFile) << "x";
#define NF_THROW(kind) \
  ::nanoflow::detail::CheckFailure(::nanoflow::ErrorKind::kind, "", ::nanoflow::detail::SourceLocation::current())
