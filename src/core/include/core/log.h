// Minimal leveled logging to stderr: NF_LOG(kInfo) << "loaded " << n << " tensors";
// The level comes from NANOFLOW_LOG (debug|info|warn|error), read once.
#pragma once
#include <sstream>

namespace nanoflow {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

LogLevel log_level();
void set_log_level(LogLevel level);

namespace detail {
class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();
  template <class T>
  LogLine& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream os_;
};
}  // namespace detail
}  // namespace nanoflow

#define NF_LOG(level)                                                          \
  if (::nanoflow::LogLevel::level < ::nanoflow::log_level()) {                 \
  } else                                                                       \
    ::nanoflow::detail::LogLine(::nanoflow::LogLevel::level, __FILE__, __LINE__)
