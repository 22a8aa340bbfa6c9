// The OpenAI error envelope and the mapping of nanoflow errors to HTTP statuses:
//   {"error": {"message", "type", "param", "code"}}
// 400 validation, 401 auth, 404 unknown model/route, 413 body too large, 429 queue full,
// 503 not ready/draining, 500 only for internal faults (../shared/RELIABILITY.md).
#pragma once
#include <exception>
#include <string>

namespace nanoflow {

struct HttpError {
  int status = 500;
  std::string type;     // "invalid_request_error", "authentication_error", ...
  std::string code;     // short machine-readable reason ("" -> null)
  std::string param;    // offending field ("" -> null)
  std::string message;
};

HttpError bad_request(std::string message, std::string param = {});
HttpError not_found(std::string message, std::string param = {});
HttpError unauthorized();
HttpError payload_too_large(size_t limit);
HttpError queue_full(const std::string& message);
HttpError unavailable(std::string message);
// RequestError -> 400/404 with its param; Error kinds -> their status; anything else -> 500.
HttpError http_error_from(const std::exception& e);

std::string error_json(const HttpError& e);  // the envelope, compact JSON

}  // namespace nanoflow
