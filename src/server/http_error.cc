#include "server/http_error.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/openai_request.h"

namespace nanoflow {

HttpError bad_request(std::string message, std::string param) {
  return {400, "invalid_request_error", "invalid_value", std::move(param), std::move(message)};
}
HttpError not_found(std::string message, std::string param) {
  return {404, "invalid_request_error", param == "model" ? "model_not_found" : "not_found",
          std::move(param), std::move(message)};
}
HttpError unauthorized() {
  return {401, "authentication_error", "invalid_api_key", "",
          "Missing or invalid API key (send 'Authorization: Bearer <key>')"};
}
HttpError payload_too_large(size_t limit) {
  return {413, "invalid_request_error", "payload_too_large", "",
          "The request body exceeds the limit of " + std::to_string(limit) + " bytes"};
}
HttpError queue_full(const std::string& message) {
  return {429, "rate_limit_error", "queue_full", "", "The server is busy (" + message + "); retry later"};
}
HttpError unavailable(std::string message) {
  return {503, "service_unavailable", "service_unavailable", "", std::move(message)};
}

HttpError http_error_from(const std::exception& e) {
  if (auto* re = dynamic_cast<const RequestError*>(&e)) {
    if (re->kind() == ErrorKind::kNotFound) return not_found(re->what(), re->param());
    return bad_request(re->what(), re->param());
  }
  if (auto* ne = dynamic_cast<const Error*>(&e)) {
    switch (ne->kind()) {
      case ErrorKind::kInvalidInput: return bad_request(ne->what());
      case ErrorKind::kNotFound: return not_found(ne->what());
      case ErrorKind::kUnsupported: return {400, "invalid_request_error", "unsupported", "", ne->what()};
      case ErrorKind::kResource: return queue_full(ne->what());
      default: break;
    }
    return {500, "internal_error", "internal_error", "", ne->what()};
  }
  return {500, "internal_error", "internal_error", "", e.what()};
}

std::string error_json(const HttpError& e) {
  nlohmann::json j = {{"error",
                       {{"message", e.message},
                        {"type", e.type},
                        {"param", e.param.empty() ? nlohmann::json() : nlohmann::json(e.param)},
                        {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}}}};
  // Messages may quote client bytes that are not UTF-8; never throw while reporting an error.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace nanoflow
